import argparse, sys, torch
from miles_core.training import loss as L, estimators_plugin as P
E = {s.name: s for s in P.miles_loss_estimators()}
def mk(**k):
    d = dict(L.LOSS_FLAG_DEFAULTS); d.update(rollout_max_response_len=8, dr_grpo_divisor=None); d.update(k)
    return argparse.Namespace(**d)
g = torch.Generator().manual_seed(0); n = [5, 200, 3]
base = {"rewards": [1., -.5, .2], "loss_masks": [(torch.rand(k, generator=g) > .3).int().tolist() for k in n]}
for key in ("log_probs", "rollout_log_probs", "ref_log_probs", "teacher_log_probs"):
    base[key] = [-torch.rand(k, generator=g) for k in n]
base["values"] = [torch.randn(k, generator=g) for k in n]
new0 = [-torch.rand(k, generator=g) for k in n]; ent0 = [torch.rand(k, generator=g) for k in n]
def go(dev, est, kw):
    b = {k: ([x.clone().to(dev) for x in v] if torch.is_tensor(v[0]) else v) for k, v in base.items()}
    a = mk(**kw); L.compute_advantages_and_returns(a, b, E[est])
    new = [x.clone().to(dev).requires_grad_() for x in new0]
    sc = dict(global_batch_size=3, global_num_tokens=L.count_loss_tokens(b["loss_masks"]))
    loss, m = L.micro_batch_loss(a, b, new, [x.to(dev) for x in ent0], E[est], **sc)
    loss.backward()
    vals = [x.clone().to(dev).requires_grad_() for x in base["values"]]
    vl, vm = L.value_loss(a, b, vals, **sc)
    assert loss.device.type == dev and all(v.device.type == dev for v in m.values())
    return [loss.item(), vl.item()] + [m[k].item() for k in sorted(m)] + [new[1].grad.sum().item()]
cfgs = [("grpo", {}), ("gspo", {"use_tis": True}),
        ("ppo", {"gamma": .99, "lambd": .95, "use_kl_loss": True, "kl_loss_coef": .1, "kl_loss_type": "low_var_kl"}),
        ("reinforce_plus_plus", {"normalize_advantages": True, "kl_coef": .05, "entropy_coef": .01}),
        ("reinforce_plus_plus_baseline", {"normalize_advantages": True, "use_opsm": True, "eps_clip_c": 3.0,
                                          "calculate_per_token_loss": True}),
        ("on_policy_distillation", {"custom_pg_loss_reducer_function_path": "miles_core.training.reducers:dr_grpo",
                                    "custom_tis_function_path": "miles_core.training.policy_loss:icepop", "use_tis": True})]
dev = sys.argv[1] if len(sys.argv) > 1 else "cuda"
bad = 0
for est, kw in cfgs:
    c, d = go("cpu", est, kw), go(dev, est, kw)
    err = max(abs(x - y) / max(1.0, abs(x)) for x, y in zip(c, d))
    bad += err > 1e-4
    print(f"{est:30s} max rel diff cpu vs {dev}: {err:.2e}")
print("FAIL" if bad else "ALL OK")
