"""The training engine of classification, in the order ``experiments.tasks.classify.run`` calls it: the process
(``device``: the device, this process's DDP rank, the seed), the model from the config (``models``), the machine
prepared for it in one call (``fast_paths.prepare_device``: threads from ``threads``, the CPU kernels, the allocator
from ``allocator``, the optimizer step), and the loop with checkpoints, resume and stop signals (``trainer``, with
``stopping``, which also stops a sweep). ``timing`` is the interleaved timing harness the thread probe and the
benchmark scripts share."""
