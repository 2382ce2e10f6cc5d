int sched_core;
