"""A Ray worker rebuilds the driver's registries from the args alone, whatever its own environment says."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

from miles_core.plugins.manager import plugin_manager_from_args
from miles_core.plugins.selection import PluginSelection

USER_FUNCTIONS = '''
    async def reward(args, samples, **kwargs):
        """Length of each response, batched."""
        return [float(len(s.response)) for s in samples]

    def keep(args, samples, **kwargs):
        return True
'''

SUMMARY = textwrap.dedent('''
    def summarize(pm, args):
        registries = {}
        for kind, registry in pm.registries().items():
            registries[kind] = {spec.name: list(vars(prov).values()) for spec, prov in registry.items()}
        statuses = {name: info.status for name, info in pm.plugin_infos.items()}
        flags = {k: getattr(args, k) for k in ("rm_type", "dynamic_sampling_filter")}
        return {"registries": registries, "statuses": statuses, "flags": flags,
                "batched": pm.get("reward_models", args.rm_type).batched}
''')

WORKER = SUMMARY + textwrap.dedent('''
    import argparse, json, sys
    from miles_core.plugins.manager import plugin_manager_from_args
    args = argparse.Namespace(**json.loads(sys.argv[1]))
    print(json.dumps(summarize(plugin_manager_from_args(args), args), sort_keys=True))
''')


def test_worker_rebuilds_the_same_registries_from_args(good_and_other, tmp_path):
    site = good_and_other("miles-user-code", "0.0.1", {}, {"user_functions": USER_FUNCTIONS})
    selection = PluginSelection.from_options(["fake_good", "no:fake_other"], disable_autoload=True, environ={})
    driver_args = {
        "plugin_selection": selection.to_dict(),
        "custom_rm_path": "user_functions:reward",
        "dynamic_sampling_filter_path": "user_functions.keep",
        "group_rm": True,
    }
    namespace: dict = {}
    exec(SUMMARY, namespace)
    args = argparse.Namespace(**driver_args)
    driver = namespace["summarize"](plugin_manager_from_args(args), args)
    assert driver["flags"] == {"rm_type": "user_functions.reward", "dynamic_sampling_filter": "user_functions.keep"}
    assert driver["registries"]["reward_models"]["fake_exact"] == ["fake_good", "miles-fake-good", "1.2.3"]
    assert driver["registries"]["reward_models"]["user_functions.reward"] == [
        "--custom-rm-path user_functions:reward", None, None]
    assert driver["batched"] is True
    assert driver["statuses"]["fake_other"] == "blocked"

    # The worker's environment says the opposite of the driver's options: it must not matter.
    env = {key: value for key, value in os.environ.items() if not key.startswith("MILES_")}
    env.update(PYTHONPATH=str(site), MILES_PLUGINS="fake_other", MILES_STRICT_PLUGINS="1",
               HOME=str(tmp_path))
    worker = subprocess.run([sys.executable, "-c", WORKER, json.dumps(driver_args)], capture_output=True,
                            text=True, env=env, timeout=60, check=True)
    assert json.loads(worker.stdout) == json.loads(json.dumps(driver, sort_keys=True))
