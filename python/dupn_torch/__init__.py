"""dupn_torch: the PyTorch twin of dupn's DUPN model (docs/scale-out.md).

Reads and writes dupn's `.safetensors` model files and runs the same network, so a model trained here (for
example with DistributedDataParallel) serves in dupn with no conversion, and the other way round.
"""
from .config import ConfigError, dims, tensor_specs
from .model_file import load_model, save_model
from .network import COLUMN_NAMES, DupnNet
from .safetensors_io import ModelFileError, read_safetensors, write_safetensors

__all__ = ["ConfigError", "COLUMN_NAMES", "DupnNet", "ModelFileError", "dims", "load_model", "read_safetensors",
           "save_model", "tensor_specs", "write_safetensors"]
