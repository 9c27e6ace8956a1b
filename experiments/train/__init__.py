"""The training engine of classification: the model from the config (``models``), the device (``device``),
data-parallel processes (``distributed``) and the epoch loop with checkpoints and resume (``trainer``)."""
