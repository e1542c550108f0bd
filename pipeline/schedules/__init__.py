"""Loss-weight schedules: pure policies (cosine, step, adaptive, performance) that say which term weights the next
epoch trains with, the original API's engine-free :class:`LossScheduler` and ``LossManager``, and the Ignite handler that wires them to events."""

from pipeline.schedules.adaptive import AdaptiveSchedule
from pipeline.schedules.weight_schedule import WeightSchedule
from pipeline.schedules.cosine import CosineSchedule
from pipeline.schedules.schedule_handler import LossScheduleHandler
from pipeline.schedules.loss_manager import LossManager, create_loss_scheduler
from pipeline.schedules.meter import TermLossMeter
from pipeline.schedules.performance import TOPOLOGY_TERMS, PerformanceSchedule
from pipeline.schedules.schedule_names import SCHEDULES, create_schedule, schedule_parameters
from pipeline.schedules.scheduler import LossScheduler
from pipeline.schedules.step import StepSchedule
from pipeline.schedules.weight_math import rebalance

__all__ = [
    "AdaptiveSchedule",
    "CosineSchedule",
    "LossManager",
    "LossScheduleHandler",
    "LossScheduler",
    "PerformanceSchedule",
    "SCHEDULES",
    "StepSchedule",
    "TOPOLOGY_TERMS",
    "TermLossMeter",
    "WeightSchedule",
    "create_loss_scheduler",
    "create_schedule",
    "rebalance",
    "schedule_parameters",
]
