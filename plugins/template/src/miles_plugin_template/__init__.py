"""miles-plugin-template: a keyword/regex-match reward and a truncation filter for Miles.

The hook implementations are in :mod:`miles_plugin_template.plugin` (the entry point); the logic is in
:mod:`~miles_plugin_template.keyword_reward` and :mod:`~miles_plugin_template.truncation_filter`, plain
functions you can unit-test without Miles running.
"""

__version__ = "0.1.0"
