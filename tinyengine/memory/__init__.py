from .plan import PLANNERS, BufferInfo, MemoryPlan, buffer_infos, plan_memory

__all__ = ["PLANNERS", "BufferInfo", "MemoryPlan", "buffer_infos", "plan_memory"]
