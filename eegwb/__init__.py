"""eegwb: an EEG self-supervised-learning workbench.

Mamba-2 masked pretraining on windowed EEG, the control experiments that say what a
model has really learned, a model autopsy, and leak-proof fine-tuning. The notebooks in
`notebooks/` and the `eegwb` CLI are thin layers over this package.
"""

__version__ = "0.1.0"
