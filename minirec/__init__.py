"""minirec: the core package shared by the services, pipelines and monitors.

Nothing here does heavy work at import time; submodules load what they need.
"""

__version__ = "0.1.0"
