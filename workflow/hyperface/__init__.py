"""HyperFace: synthetic face-recognition datasets by packing identities on the embedding sphere."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hyperface")
except PackageNotFoundError:  # imported from a source tree that was not installed
    __version__ = "0+unknown"
