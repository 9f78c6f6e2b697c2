"""Ray's task and actor states, and its reasons to drain a node, as every role spells them.

Task states are numbers in the task history's records (``task_records``)
and names in the state API; drivers and workers record them, and the
control store keeps them and records its actors' creation tasks. Actor
states are strings: the control store's actor directory sets them, core
workers read them from its replies, the state API shows them.
"""

#: Ray's task states; records carry their numbers.
STATE_NAMES = ("PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING",
               "FINISHED", "FAILED")
(PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER, RUNNING, FINISHED,
 FAILED) = range(len(STATE_NAMES))
TERMINAL_STATES = (FINISHED, FAILED)

#: Ray's actor states.
PENDING_CREATION, ALIVE, RESTARTING, DEAD = "PENDING_CREATION", "ALIVE", "RESTARTING", "DEAD"

#: Ray's reasons to drain a node (``drain_node``): the autoscaler removes an idle node (the
#: node refuses while it runs work); the machine is being taken away (accepted at once).
DRAIN_IDLE_TERMINATION = "DRAIN_NODE_REASON_IDLE_TERMINATION"
DRAIN_PREEMPTION = "DRAIN_NODE_REASON_PREEMPTION"
DRAIN_REASONS = (DRAIN_IDLE_TERMINATION, DRAIN_PREEMPTION)
#: How long a drained node may take to move its objects to other nodes, unless the caller
#: says (Ray's ``deadline_remaining_seconds``).
DRAIN_DEADLINE_S = 600.0
