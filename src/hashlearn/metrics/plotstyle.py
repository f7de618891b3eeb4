"""One plot style per method, the same in every figure the library draws.

:func:`method_styles` gives each name a (colour, marker) pair that no other name in the figure shares:
matplotlib's ten ``tab10`` colours crossed with twelve markers, stepped so that neighbours in the list
differ in both (60 distinct pairs before one repeats). No matplotlib import: the values are plain
strings any plotting call accepts.
"""

from __future__ import annotations

__all__ = ["method_styles", "COLORS", "MARKERS"]

#: matplotlib's ``tab10`` palette, in its order.
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
#: Filled markers that stay readable at small sizes.
MARKERS = ("o", "s", "D", "^", "v", "<", ">", "p", "P", "X", "h", "*")


def method_styles(names) -> dict[str, dict]:
    """``{name: {"color": ..., "marker": ...}}`` for the distinct names, in first-seen order.

    Examples
    --------
    >>> s = method_styles(["itq", "sh", "agh", "itq"])
    >>> s["itq"], s["sh"]
    ({'color': '#1f77b4', 'marker': 'o'}, {'color': '#ff7f0e', 'marker': 's'})
    >>> len({(v["color"], v["marker"]) for v in method_styles(range(60)).values()})
    60
    """
    unique = list(dict.fromkeys(str(n) for n in names))
    return {n: {"color": COLORS[i % len(COLORS)], "marker": MARKERS[i % len(MARKERS)]} for i, n in enumerate(unique)}
