"""Ray orchestration: the cluster, placement, the rollout manager, the train group and the loop."""
