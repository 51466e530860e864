"""The demo dataset's classes: 3 events, 6 sets and 16 elements, numbered as FineGym numbers its own.

Event ids follow FineGym (2 = FX, 3 = BB, 4 = UB; the event of a set is its tens digit), so the files also pass
`fineact.labels.finegym_levels`. Each element also says how it is drawn (`family`, `variant`; see
`fineact.demo.scenes`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Element:
    """One finest-level class: a line of the category file, plus how it is drawn."""

    clabel: int
    set_id: int
    glabel: int
    description: str
    family: str   # motion family of its set: bounce, spin, orbit, travel
    variant: str  # the temporal detail that separates it from its siblings

    @property
    def event_id(self) -> int:
        return self.set_id // 10

    @property
    def event_abbrev(self) -> str:
        return EVENTS[self.event_id][0]


# FineGym's own event ids and abbreviations (labels.FINEGYM_EVENTS): 2 = FX, 3 = BB, 4 = UB.
EVENTS: dict[int, tuple[str, str]] = {2: ("FX", "floor exercise"), 3: ("BB", "balance beam"),
                                      4: ("UB", "uneven bars")}
SETS: dict[int, str] = {21: "FX_leap_jump_hop", 22: "FX_turns", 31: "BB_leap_jump_hop", 32: "BB_turns",
                        41: "UB_circles", 42: "UB_transition_flight"}
SET_FAMILY: dict[int, str] = {21: "bounce", 22: "spin", 31: "bounce", 32: "spin", 41: "orbit", 42: "travel"}

_ELEMENT_TABLE: tuple[tuple[int, str, str], ...] = (
    (21, "jump", "jump, one take-off and landing"),
    (21, "two_hops", "two consecutive hops as high as a jump, in the time of one jump"),
    (21, "tuck_jump", "tuck jump, the body tucked only at the top of the jump"),
    (22, "turn", "1 turn, clockwise"),
    (22, "reverse_turn", "1 turn, counter-clockwise"),
    (22, "turn_with_pause", "1 turn, clockwise, with a brief hold at the half turn"),
    (31, "jump", "jump, one take-off and landing"),
    (31, "tuck_jump", "tuck jump, the body tucked only at the top of the jump"),
    (32, "turn", "1 turn, clockwise"),
    (32, "reverse_turn", "1 turn, counter-clockwise"),
    (41, "circle", "giant circle clockwise"),
    (41, "reverse_circle", "giant circle counter-clockwise"),
    (41, "release_circle", "giant circle clockwise with release and re-grasp at the top"),
    (42, "twist_flight_twist", "clockwise twist in hang, flight to the other bar, clockwise twist in hang"),
    (42, "twist_flight_reverse_twist", "clockwise twist in hang, flight to the other bar, "
                                       "counter-clockwise twist in hang"),
    (42, "reverse_twist_flight_twist", "counter-clockwise twist in hang, flight to the other bar, "
                                       "clockwise twist in hang"),
)

def _build_elements() -> tuple[Element, ...]:
    elements = []
    for clabel, (set_id, variant, text) in enumerate(_ELEMENT_TABLE):
        rank_in_set = sum(1 for e in elements if e.set_id == set_id)
        elements.append(Element(clabel, set_id, glabel=set_id * 10 + rank_in_set,  # unique, like FineGym's
                                description=f"({EVENTS[set_id // 10][0]}) {text}", family=SET_FAMILY[set_id],
                                variant=variant))
    return tuple(elements)


ELEMENTS: tuple[Element, ...] = _build_elements()


__all__ = ["ELEMENTS", "EVENTS", "SETS", "SET_FAMILY", "Element"]
