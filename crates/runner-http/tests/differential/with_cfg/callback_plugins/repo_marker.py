# The repository's own callback plugin: it must run under Runner as it does under bare
# ansible-playbook. It prints a line of its own per task and at the end, into the output that
# the run log keeps.
from __future__ import annotations

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "repo_marker"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._display.display("repo_marker: task " + task.get_name())

    def v2_playbook_on_stats(self, stats):
        self._display.display("repo_marker: the repository's callback ran")
