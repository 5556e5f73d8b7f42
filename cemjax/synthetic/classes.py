"""Semantic classes of the synthetic EM world (the uint8 values of every label array).

=====  ============  ======================================================================================
value  name          what carries it
=====  ============  ======================================================================================
0      background    resin outside cells and plain cytoplasm (everything not listed below)
1      membrane      the plasma membrane of every cell (a band about one bilayer or one pixel thick)
2      mitochondria  the whole mitochondrion: outer and inner membranes, cristae and matrix
3      lysosome      dense lysosomes incl. their membrane
4      nucleus       nucleoplasm, heterochromatin and the nuclear envelope (not the nucleolus)
5      nucleolus     the nucleolus inside a nucleus (union with 4 = the whole nucleus)
6      vesicle       small vesicles (synaptic-vesicle sized ~40–60 nm and endosome-like up to ~200 nm)
7      cleft         synaptic cleft: the dense gap between two apposed membranes, membranes included
=====  ============  ======================================================================================

Labels are painted in that order of precedence: an object's label covers its own membranes.
"""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "background",
    "membrane",
    "mitochondria",
    "lysosome",
    "nucleus",
    "nucleolus",
    "vesicle",
    "cleft",
)
BACKGROUND, MEMBRANE, MITOCHONDRIA, LYSOSOME, NUCLEUS, NUCLEOLUS, VESICLE, CLEFT = range(len(CLASS_NAMES))

# RGB overlay colour per class (contact sheets); background is never drawn.
CLASS_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (255, 215, 0),
    (0, 200, 255),
    (255, 60, 60),
    (60, 120, 255),
    (200, 80, 255),
    (60, 230, 90),
    (255, 140, 0),
)
