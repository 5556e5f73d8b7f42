"""Which UNet parameters fine-tuning may change (the reference's `finetune_layer`, REFERENCE §4).

The reference first marks every encoder parameter as not trainable, then walks the encoder's children in
their registration order — conv1, bn1, relu, maxpool, layer1, layer2, layer3, layer4 (smp's ResNet encoder has
no avgpool/fc) — and makes every child from a start index on trainable again: "all" → index 0, "layer1" → 4,
"layer2" → 5, "layer3" → 6, "layer4" → 7; "none" re-enables nothing. Decoder and segmentation head are always
trained. An optional switch (`unfreeze_encoder_bn`, off in every benchmark config) additionally trains the affine
weight/bias of every encoder BatchNorm. Frozen parameters have no gradient in torch, so AdamW neither moves nor
decays them. Frozen BatchNorm *statistics* still update in the reference because the model trains in train
mode; `frozen_encoder_blocks` names the frozen blocks so a caller can choose what to do with them.

Parameter trees are addressed by path names equal to the torch module path (`encoder.layer3.0.bn1.weight`);
the leaf name (`kernel` vs `weight`) does not matter here. Trees may hold arrays or `nnx.Variable`s.
"""

from __future__ import annotations

import jax
import optax

# smp ResNet encoder children in registration order; relu and maxpool have no parameters.
ENCODER_CHILDREN = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
_START_INDEX = {"all": 0, "layer1": 4, "layer2": 5, "layer3": 6, "layer4": 7}
POLICIES = ("none", "layer1", "layer2", "layer3", "layer4", "all")
_BN_LEAVES = ("weight", "bias")  # in the encoder only BatchNorms own these (convs have `kernel`, no bias)
_TRAIN, _FREEZE = "train", "freeze"


def _check_policy(policy: str) -> None:
    if policy not in POLICIES:
        raise ValueError(f"unknown freeze policy {policy!r}; valid policies are {', '.join(POLICIES)}")


def frozen_encoder_blocks(policy: str) -> tuple[str, ...]:
    """Encoder children (with parameters) that `policy` freezes, e.g. "layer3" → ("conv1", "bn1", "layer1",
    "layer2"); "none" → all six, "all" → ()."""
    _check_policy(policy)
    start = _START_INDEX.get(policy, len(ENCODER_CHILDREN))
    return tuple(name for name in ENCODER_CHILDREN[:start] if name not in ("relu", "maxpool"))


def _names(path) -> tuple[str, ...]:
    """A jax key path → its names, dropping the `.value` of an nnx.Variable."""
    out = []
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            out.append(str(key.key))
        elif isinstance(key, jax.tree_util.SequenceKey):
            out.append(str(key.idx))
        elif isinstance(key, jax.tree_util.GetAttrKey):
            if key.name != "value":
                out.append(key.name)
        elif isinstance(key, jax.tree_util.FlattenedIndexKey):
            out.append(str(key.key))
        else:
            out.append(str(key))
    return tuple(out)


def _is_trainable(names: tuple[str, ...], frozen: tuple[str, ...], unfreeze_encoder_bn: bool) -> bool:
    if not names or names[0] != "encoder":
        return True  # decoder, segmentation head
    if len(names) > 1 and names[1] in frozen:
        return unfreeze_encoder_bn and names[-1] in _BN_LEAVES
    return True


def trainable_mask(params, policy: str, *, unfreeze_encoder_bn: bool = False):
    """Same-structure pytree of bool: True where `policy` lets fine-tuning change the parameter.

    Args:
        params: the UNet's parameters, e.g. `nnx.state(model, nnx.Param)` (or its pure-array form), with
            top-level `encoder`, `decoder`, `segmentation_head`.
        policy: one of POLICIES — "none" (whole encoder frozen), "layer1" … "layer4" (train that layer and the
            deeper ones), "all" (train everything).
        unfreeze_encoder_bn: also train the weight/bias of frozen encoder BatchNorms (reference option).
    """
    frozen = frozen_encoder_blocks(policy)
    return jax.tree_util.tree_map_with_path(
        lambda path, _: _is_trainable(_names(path), frozen, unfreeze_encoder_bn), params
    )


def masked_optimizer(
    tx: optax.GradientTransformation, params, policy: str, *, unfreeze_encoder_bn: bool = False
) -> optax.GradientTransformation:
    """`tx` on the trainable parameters; frozen ones get a zero update (no decay, no optimizer state).

    Works for the parameter tree `params` in either form nnx.Optimizer hands an optax transform (Variables at
    init, pure arrays at update): labels are recomputed from paths on every call. A frozen parameter p becomes
    p + 0, bit-identical unless p is −0.0 (which IEEE addition turns into +0.0).

    Raises:
        ValueError: for an unknown policy, or if `params` has no `encoder` parameters to freeze.
    """
    frozen = frozen_encoder_blocks(policy)
    paths = [_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    if not any(names and names[0] == "encoder" for names in paths):
        raise ValueError("params has no top-level 'encoder' entries; expected a cemjax Unet's parameters")

    def labels(tree):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: _TRAIN if _is_trainable(_names(path), frozen, unfreeze_encoder_bn) else _FREEZE, tree
        )

    return optax.multi_transform({_TRAIN: tx, _FREEZE: optax.set_to_zero()}, labels)
