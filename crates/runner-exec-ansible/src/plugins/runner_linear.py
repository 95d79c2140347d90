# Shipped inside runner-exec-ansible (include_str!) and written into each run's work directory.
# The linear strategy, plus a graceful stop: before handing out the next task it looks for the file
# named by RUNNER_STOP_FILE. Once that file exists no new task starts (not even rescue, always or
# handlers), the task in progress having finished on every host, and the playbook ends. SIGINT
# cannot do this: ansible-playbook aborts the running task and skips rescue/always on SIGINT.
from __future__ import annotations

DOCUMENTATION = """
    name: runner_linear
    short_description: The linear strategy, stoppable between tasks
    description:
      - Behaves as the linear strategy. When the file named by RUNNER_STOP_FILE exists, no further
        task starts and the playbook ends after the task in progress finished on every host.
"""

import os

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule


def _stop_requested():
    path = os.environ.get("RUNNER_STOP_FILE")
    return bool(path) and os.path.exists(path)


def _runner_callbacks(tqm):
    return [plugin for plugin in getattr(tqm, "_callback_plugins", []) if hasattr(plugin, "runner_play_end")]


class StrategyModule(LinearStrategyModule):

    def __init__(self, tqm):
        super().__init__(tqm)
        self._runner_stopped = False

    def _get_next_task_lockstep(self, hosts, iterator):
        # The linear loop calls this once per task, after the previous task ended on every host.
        if _stop_requested():
            self._runner_stopped = True
            return []
        return super()._get_next_task_lockstep(hosts, iterator)

    def run(self, iterator, play_context):
        result = super().run(iterator, play_context)
        callbacks = _runner_callbacks(self._tqm)
        failed = set(iterator.get_failed_hosts()) | set(self._tqm._failed_hosts)
        unreachable = set(self._tqm._unreachable_hosts)
        for plugin in callbacks:
            plugin.runner_play_end(failed, unreachable)
        if self._runner_stopped:
            for plugin in callbacks:
                plugin.runner_stopped()
            # Ends this play and skips the plays after it (PlaybookExecutor breaks on this bit).
            return result | self._tqm.RUN_FAILED_BREAK_PLAY
        return result
