"""Fine-tuning optimizer, schedule, losses and freeze policies against real PyTorch / smp."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx

from cemjax.convert.names import torch_key
from cemjax.models import Unet
from cemjax.models.registry import freeze_policies
from cemjax.seg.freeze import frozen_encoder_blocks, trainable_mask
from cemjax.seg.losses import bce_with_logits, weighted_cross_entropy
from cemjax.seg.optim import one_cycle, one_cycle_adamw
from cemjax.seg.step import init_state, masked_tx


def _torch_one_cycle(total_steps, max_lr, **kwargs):
    """lr and β1 that torch's AdamW uses at each of its `total_steps` steps under OneCycleLR."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=max_lr, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps=total_steps, **kwargs)
    lrs, betas = [], []
    for _ in range(total_steps):
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        opt.step()
        sched.step()
    return np.array(lrs), np.array(betas)


@pytest.mark.parametrize(
    "total_steps, max_lr, kwargs",
    [(50, 0.003, {}), (1000, 0.003, {}), (37, 0.1, {"pct_start": 0.25, "anneal_strategy": "linear"})],
)
def test_one_cycle_matches_torch(total_steps, max_lr, kwargs):
    want_lr, want_b1 = _torch_one_cycle(total_steps, max_lr, **kwargs)
    ours = {k: v for k, v in kwargs.items() if k != "anneal_strategy"}
    ours["anneal"] = kwargs.get("anneal_strategy", "cos")
    with jax.enable_x64(True):
        lr, b1 = one_cycle(total_steps, max_lr, **ours)
        steps = jnp.arange(total_steps)
        got_lr, got_b1 = np.asarray(jax.vmap(lr)(steps)), np.asarray(jax.vmap(b1)(steps))
        assert got_lr.dtype == np.float64
        assert float(lr(0)) == pytest.approx(want_lr[0], rel=1e-12)  # scalar python-int step
    np.testing.assert_allclose(got_lr, want_lr, rtol=1e-9, atol=0)
    np.testing.assert_allclose(got_b1, want_b1, rtol=1e-9, atol=0)


def test_one_cycle_rejects_bad_arguments():
    with pytest.raises(ValueError, match="total_steps"):
        one_cycle(0, 0.1)
    with pytest.raises(ValueError, match="anneal"):
        one_cycle(10, 0.1, anneal="exp")


_SHAPES = {"w": (4, 3), "b": (5,), "k": (2, 2, 2)}


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    init = {k: rng.normal(size=s) for k, s in _SHAPES.items()}
    target = {k: rng.normal(size=s) for k, s in _SHAPES.items()}
    scale = {k: rng.uniform(0.2, 3.0, size=s) for k, s in _SHAPES.items()}
    return init, target, scale


def _run_torch(total_steps, max_lr, dtype):
    init, target, scale = _problem()
    params = {k: torch.nn.Parameter(torch.tensor(v, dtype=dtype)) for k, v in init.items()}
    t = {k: torch.tensor(v, dtype=dtype) for k, v in target.items()}
    c = {k: torch.tensor(v, dtype=dtype) for k, v in scale.items()}
    opt = torch.optim.AdamW(list(params.values()), lr=max_lr, weight_decay=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps=total_steps)
    for _ in range(total_steps):
        opt.zero_grad()
        loss = sum((c[k] * (p - t[k]) ** 2 + torch.sin(3 * p)).sum() for k, p in params.items())
        loss.backward()
        opt.step()
        sched.step()
    return {k: p.detach().numpy() for k, p in params.items()}


def _run_jax(total_steps, max_lr, dtype):
    init, target, scale = _problem()
    params = {k: jnp.asarray(v, dtype) for k, v in init.items()}
    t = {k: jnp.asarray(v, dtype) for k, v in target.items()}
    c = {k: jnp.asarray(v, dtype) for k, v in scale.items()}

    def loss_fn(ps):
        return sum(jnp.sum(c[k] * (p - t[k]) ** 2 + jnp.sin(3 * p)) for k, p in ps.items())

    tx = one_cycle_adamw(total_steps, max_lr)
    state = tx.init(params)

    @jax.jit
    def step(ps, st):
        updates, st = tx.update(jax.grad(loss_fn)(ps), st, ps)
        return optax.apply_updates(ps, updates), st

    for _ in range(total_steps):
        params, state = step(params, state)
    return {k: np.asarray(v) for k, v in params.items()}, state


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_one_cycle_adamw_matches_torch(precision):
    total_steps, max_lr = 30, 0.05
    want = _run_torch(total_steps, max_lr, getattr(torch, precision))
    with jax.enable_x64(precision == "float64"):
        got, state = _run_jax(total_steps, max_lr, getattr(jnp, precision))
    tol = 1e-12 if precision == "float64" else 1e-5
    moved = 0.0
    for k in _SHAPES:
        assert got[k].dtype == np.dtype(precision)
        np.testing.assert_allclose(got[k], want[k], rtol=0, atol=tol, err_msg=k)
        moved = max(moved, float(np.abs(want[k] - _problem()[0][k]).max()))
    assert moved > 0.05  # the run really trained
    assert int(state.count) == total_steps
    want_lr, want_b1 = _torch_one_cycle(total_steps, max_lr)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(want_lr[-1], rel=1e-5)
    assert float(state.hyperparams["b1"]) == pytest.approx(want_b1[-1], rel=1e-6)


def test_bce_with_logits_matches_torch():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=4.0, size=(2, 8, 6, 1)).astype(np.float32)
    mask = (rng.uniform(size=(2, 8, 6, 1)) > 0.6).astype(np.float32)
    want = torch.nn.BCEWithLogitsLoss()(torch.from_numpy(logits), torch.from_numpy(mask)).item()
    assert abs(float(bce_with_logits(logits, mask)) - want) <= 1e-6
    assert abs(float(bce_with_logits(logits, mask[..., 0].astype(np.uint8))) - want) <= 1e-6
    with pytest.raises(ValueError):
        bce_with_logits(logits, mask[:1])


@pytest.mark.parametrize("weights", [None, [0.1, 0.1, 1, 1, 0.1, 3, 3]])
def test_weighted_cross_entropy_matches_torch(weights):
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=3.0, size=(2, 8, 6, 7)).astype(np.float32)
    labels = rng.integers(0, 7, size=(2, 8, 6))
    w = None if weights is None else torch.tensor(weights, dtype=torch.float32)
    want = torch.nn.CrossEntropyLoss(weight=w)(
        torch.from_numpy(logits).permute(0, 3, 1, 2), torch.from_numpy(labels)
    ).item()
    got = weighted_cross_entropy(jnp.asarray(logits), jnp.asarray(labels, jnp.int32), weights)
    assert abs(float(got) - want) <= 1e-6
    with pytest.raises(TypeError):
        weighted_cross_entropy(logits, labels.astype(np.float32), weights)


# --- freeze policies -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unet():
    return Unet("resnet18", in_channels=1, classes=1, rngs=nnx.Rngs(0))


@pytest.fixture(scope="module")
def torch_unet():
    smp = pytest.importorskip("segmentation_models_pytorch")
    torch.manual_seed(0)
    return smp.Unet(encoder_name="resnet18", encoder_weights=None, in_channels=1, classes=1)


def _reference_trainable(model, policy, unfreeze_encoder_bn=False):
    """The reference's rule, restated on a torch smp.Unet: names of parameters that keep requires_grad."""
    start = {"none": None, "all": 0, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}[policy]
    children = dict(model.encoder.named_children())
    names = list(children)
    trainable_enc = set()
    if start is not None:
        for child in names[start:]:
            trainable_enc |= {f"encoder.{child}.{n}" for n, _ in children[child].named_parameters()}
    if unfreeze_encoder_bn:
        for mod_name, mod in model.encoder.named_modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                trainable_enc |= {f"encoder.{mod_name}.{n}" for n, _ in mod.named_parameters()}
    return {n for n, _ in model.named_parameters() if not n.startswith("encoder.") or n in trainable_enc}


def _flax_names(tree):
    from cemjax.seg.freeze import _names

    return {torch_key(_names(path)): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.mark.parametrize("unfreeze_bn", [False, True])
@pytest.mark.parametrize("policy", freeze_policies("resnet18"))
def test_trainable_names_match_reference_rule(unet, torch_unet, policy, unfreeze_bn):
    params = nnx.state(unet, nnx.Param)
    mask = _flax_names(trainable_mask(params, policy, "resnet18", unfreeze_encoder_bn=unfreeze_bn))
    assert set(mask) == {n for n, _ in torch_unet.named_parameters()}  # same parameter names both sides
    got = {name for name, trainable in mask.items() if trainable}
    assert got == _reference_trainable(torch_unet, policy, unfreeze_bn)
    # the pure-array form (what nnx.Optimizer passes to tx.update) gets the same mask
    pure = nnx.to_pure_dict(params)
    assert _flax_names(trainable_mask(pure, policy, "resnet18", unfreeze_encoder_bn=unfreeze_bn)) == mask


def test_frozen_encoder_blocks():
    assert frozen_encoder_blocks("none", "resnet50") == ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
    assert frozen_encoder_blocks("layer3", "resnet50") == ("conv1", "bn1", "layer1", "layer2")
    assert frozen_encoder_blocks("layer1", "resnet18") == ("conv1", "bn1")
    assert frozen_encoder_blocks("all", "resnet34") == ()
    for bad in ("layer5", "None", ""):
        with pytest.raises(ValueError, match="none, layer1, layer2, layer3, layer4, all"):
            frozen_encoder_blocks(bad, "resnet18")
    with pytest.raises(ValueError, match="valid policies"):
        trainable_mask({"encoder": {"conv1": {"kernel": jnp.zeros(1)}}}, "layer0", "resnet18")
    with pytest.raises(ValueError, match="unknown encoder 'resnet7'"):
        frozen_encoder_blocks("none", "resnet7")


def test_masked_step_leaves_frozen_parameters_bit_identical():
    model = Unet("resnet18", in_channels=1, classes=1, rngs=nnx.Rngs(1))
    mask = trainable_mask(nnx.state(model, nnx.Param), "layer3", "resnet18")
    tx = masked_tx(one_cycle_adamw(10), mask)
    _, state = init_state(model, tx)  # the fine-tuning trainer's state: pure parameter arrays
    # no Adam moments for frozen parameters: mu holds exactly the trainable ones
    n_trainable = sum(jax.tree.leaves(mask))
    mu_leaves = [x for x in jax.tree.leaves(state.opt_state) if getattr(x, "ndim", 0) > 0]
    assert len(mu_leaves) == 2 * n_trainable
    grads = jax.tree.map(lambda x: jnp.full_like(x, 0.5), state.params)
    updates, _ = jax.jit(tx.update)(grads, state.opt_state, state.params)
    before = {k: np.asarray(v).copy() for k, v in _flax_names(state.params).items()}
    after = {k: np.asarray(v) for k, v in _flax_names(optax.apply_updates(state.params, updates)).items()}
    frozen = ("encoder.conv1.", "encoder.bn1.", "encoder.layer1.", "encoder.layer2.")
    for name, old in before.items():
        if name.startswith(frozen):
            assert old.tobytes() == after[name].tobytes(), name
        else:
            assert not np.array_equal(old, after[name]), name
