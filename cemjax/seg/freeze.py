"""Which UNet parameters fine-tuning may change (the reference's `finetune_layer`; docs/method.md §4).

The reference first marks every encoder parameter as not trainable, then walks the encoder's children in their
registration order (smp's ResNet encoder: conv1, bn1, relu, maxpool, layer1 … layer4) and makes every child
from a start on trainable again: "all" → all of them, "layer1" → layer1 on, …, "layer4" → layer4 only; "none"
re-enables nothing. Here an encoder names its parameter-holding children in `BLOCKS` and the possible starts in
`FREEZE_POINTS` (`cemjax.models.registry`), so the rule holds for any registered encoder. Decoder and
segmentation head are always trained. An optional switch (`unfreeze_encoder_bn`, off in every benchmark) also
trains the affine weight/bias of every frozen encoder BatchNorm. Frozen parameters have no gradient in torch,
so AdamW neither moves nor decays them. Frozen BatchNorm *statistics* still update in the reference because the
model trains in train mode; `frozen_encoder_blocks` names the frozen blocks so a caller can choose.

Parameter trees are addressed by path names equal to the torch module path (`encoder.layer3.0.bn1.weight`);
the leaf name (`kernel` vs `weight`) does not matter here. Trees may hold arrays or `nnx.Variable`s.
"""

from __future__ import annotations

import jax

from cemjax.models.registry import encoder_entry, freeze_policies

_BN_LEAVES = ("weight", "bias")  # in the encoder only BatchNorms own these (convs have `kernel`, no bias)


def frozen_encoder_blocks(policy: str, encoder: str) -> tuple[str, ...]:
    """Encoder blocks that `policy` freezes, e.g. "layer3" of a ResNet → ("conv1", "bn1", "layer1", "layer2");
    "none" → every block, "all" → ()."""
    policies = freeze_policies(encoder)
    if policy not in policies:
        raise ValueError(f"unknown freeze policy {policy!r} for {encoder}; valid policies are {', '.join(policies)}")
    blocks = encoder_entry(encoder).blocks
    if policy == "none":
        return blocks
    return () if policy == "all" else blocks[: blocks.index(policy)]


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


def trainable_mask(params, policy: str, encoder: str, *, unfreeze_encoder_bn: bool = False):
    """Same-structure pytree of bool: True where `policy` lets fine-tuning change the parameter.

    Args:
        params: the UNet's parameters, e.g. `nnx.state(model, nnx.Param)` (or its pure-array form), with
            top-level `encoder`, `decoder`, `segmentation_head`.
        policy: one of `freeze_policies(encoder)` — "none" (whole encoder frozen), a freeze point such as
            "layer1" … "layer4" (train that block and the deeper ones), "all" (train everything).
        encoder: the UNet's encoder name (`cemjax.models.registry`).
        unfreeze_encoder_bn: also train the weight/bias of frozen encoder BatchNorms (reference option).
    """
    frozen = frozen_encoder_blocks(policy, encoder)
    return jax.tree_util.tree_map_with_path(
        lambda path, _: _is_trainable(_names(path), frozen, unfreeze_encoder_bn), params
    )
