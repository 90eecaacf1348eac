"""EEG data on disk and in memory: the Parquet layout, ingest, the synthetic cohort, the
dataset and its splits.

Names load lazily, so `import eegwb.data` costs nothing until one is used. The ingest
entry point is `eegwb.data.ingest.ingest` (its module shares the name).
"""

from eegwb.lazy import lazy_exports

EXPORTS = {
    "Batch": "batch",
    "EEGDataset": "dataset",
    "collate": "dataset",
    "DatasetError": "layout",
    "RecordingMeta": "layout",
    "build_table": "layout",
    "list_recordings": "layout",
    "read_recording": "layout",
    "recordings_index": "layout",
    "write_recording": "layout",
    "MONTAGES": "montage",
    "MontageError": "montage",
    "electrode_positions": "montage",
    "IngestConfig": "ingest_config",
    "IngestReport": "ingest_report",
    "preview_sources": "sources",
    "read_source": "sources",
    "SynthConfig": "synthetic_config",
    "generate_cohort": "synthetic",
    "read_manifest": "synthetic",
    "SplitData": "splits",
    "default_splits": "splits",
    "load_splits": "splits",
    "participant_selection": "splits",
    "resolve_selectors": "splits",
    "save_splits": "splits",
    "grouped_kfold": "participant_split",
    "split_by_participant": "participant_split",
}
__all__ = [
    "MONTAGES",
    "Batch",
    "DatasetError",
    "EEGDataset",
    "IngestConfig",
    "IngestReport",
    "MontageError",
    "RecordingMeta",
    "SplitData",
    "SynthConfig",
    "build_table",
    "collate",
    "default_splits",
    "electrode_positions",
    "generate_cohort",
    "grouped_kfold",
    "list_recordings",
    "load_splits",
    "participant_selection",
    "preview_sources",
    "read_manifest",
    "read_recording",
    "read_source",
    "recordings_index",
    "resolve_selectors",
    "save_splits",
    "split_by_participant",
    "write_recording",
]
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
