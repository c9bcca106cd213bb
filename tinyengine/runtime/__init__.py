from .host import HostModel, load_project_report

__all__ = ["HostModel", "load_project_report"]
