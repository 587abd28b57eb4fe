"""``corral.Client``'s calls of the feature services, one mixin per service.

``JobCalls`` (JobService), ``ScheduleCalls`` (ScheduleService) and
``EnvironmentCalls`` (EnvironmentService) take and return the domain types of
``corral.jobs``, ``corral.schedules`` and ``corral.environments``; the client
composes them over its own stubs and plumbing.
"""
