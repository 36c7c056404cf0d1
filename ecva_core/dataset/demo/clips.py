"""The demo clips: what each one shows, when, and its ground-truth annotation in ECVA's cell formats."""

from __future__ import annotations

from dataclasses import dataclass, field

from ecva_core.dataset.demo.render import Window
from ecva_core.schema import video_file_name


@dataclass(frozen=True)
class DemoClip:
    """One demo clip: what is drawn, when, and its ground-truth annotation."""

    video_id: str
    scene: str
    duration: int  # seconds
    category: tuple[int, int]
    moments: tuple[tuple[int, int], ...]  # whole seconds, so the MMSS cells match the rendering exactly
    descriptions: tuple[str, ...]
    reason: str
    result: str
    key_phrases: tuple[str, ...]
    gist: str  # the event in other words, for the demo answers
    params: dict[str, float] = field(default_factory=dict)

    @property
    def window(self) -> Window:
        return Window(self.moments[0][0], self.moments[-1][1])

    @property
    def video_file(self) -> str:
        return video_file_name(self.video_id)

    @property
    def category_cell(self) -> str:
        return f"[{self.category[0]}-{self.category[1]},5]"

    @property
    def moment_cell(self) -> str:
        return "".join(f"[{_mmss(s)},{_mmss(e)}]" for s, e in self.moments)

    @property
    def description_cell(self) -> str:
        return "".join(f"[{d}]" for d in self.descriptions)

    @property
    def description(self) -> str:
        return " ".join(self.descriptions)


def _mmss(seconds: int) -> str:
    return f"{seconds // 60:02d}{seconds % 60:02d}"


CLIPS: tuple[DemoClip, ...] = (
    DemoClip(
        "1", "collision", 10, (5, 1), ((4, 8),),
        ("A red car and a blue car drive toward each other in the same lane and crash head-on in the middle "
         "of the street, throwing debris across the road",),
        "The red car was driving in the wrong lane against traffic, and neither driver braked in time to "
        "avoid the oncoming vehicle.",
        "Both cars were badly damaged at the front, debris was scattered over the road, smoke rose from the "
        "wreck and traffic on the street was blocked.",
        ("two cars collide head-on", "car driving in wrong lane", "debris scattered on road",
         "front of cars damaged", "smoke rises from wreck"),
        "a red car and a blue car crash into each other head-on in the middle of the street",
    ),
    DemoClip(
        "2", "fall", 9, (8, 3), ((4, 8),),
        ("A woman walking along the sidewalk trips over a raised paving stone and falls flat on the ground, "
         "then struggles to get up",),
        "The pedestrian did not notice the raised paving stone on the uneven sidewalk and tripped over it "
        "while walking.",
        "The woman fell hard onto the pavement and lay on the ground, possibly injured, unable to stand up "
        "straight away.",
        ("woman trips on sidewalk", "raised paving stone", "falls flat on ground", "struggles to get up"),
        "a woman walking on the pavement stumbles over a stone and ends up lying on the ground",
    ),
    DemoClip(
        "3", "building_fire", 10, (9, 1), ((3, 10),),
        ("Flames appear in the window of a house, grow quickly and spread down the wall while thick smoke "
         "rises above the roof",),
        "A fire broke out inside the house, probably from an electrical fault, and spread because nobody "
        "was there to put it out.",
        "The house window and wall were engulfed in flames, thick smoke rose over the street and a "
        "passer-by stopped and raised his arms in alarm.",
        ("fire in house window", "flames spread down wall", "thick smoke rising", "passer-by raises arms"),
        "a house catches fire, starting at a window, and the blaze keeps growing",
    ),
    DemoClip(
        "4", "theft", 9, (7, 3), ((3, 5), (5, 8)),
        ("A man walking along the park path stops at the bench and snatches the bag lying next to a seated "
         "woman",
         "The thief runs off along the path with the bag while the woman stands up and raises her arms"),
        "The thief saw a bag left unattended on the bench beside its owner and took the chance to steal it.",
        "The woman lost her bag, the thief escaped out of view, and the owner was left shouting for help.",
        ("man snatches bag from bench", "thief runs away", "woman raises her arms", "bag left unattended",
         "owner loses her bag"),
        "a passer-by grabs a handbag from a park bench and sprints away with it",
        {"grab": 4.5},
    ),
    DemoClip(
        "5", "fight", 10, (1, 1), ((3, 8),),
        ("Two men meet on the sidewalk, start exchanging punches and one of them is knocked to the ground",),
        "An argument between the two men on the street escalated and they began hitting each other.",
        "The man in blue was knocked down and lay on the sidewalk, and the fight disturbed people passing "
        "on the street.",
        ("two men exchange punches", "argument escalated", "man knocked to ground", "fight on sidewalk"),
        "two men come to blows on the pavement until one of them goes down",
    ),
    DemoClip(
        "6", "graffiti", 9, (4, 2), ((3, 7),),
        ("A person in an orange jacket walks up to a clean wall and sprays pink and green paint across it",),
        "The person deliberately defaced the wall with spray paint without permission.",
        "The clean wall was covered with pink and green graffiti, damaging public property, and the person "
        "walked away.",
        ("sprays paint on wall", "pink and green graffiti", "wall defaced", "person walks away"),
        "someone in orange scrawls spray paint over a clean wall",
    ),
    DemoClip(
        "7", "dog_attack", 10, (2, 1), ((4, 8),),
        ("A loose dog runs up behind a man walking in the park, jumps at him repeatedly and knocks him down",),
        "The dog was off its leash and unsupervised, and it became aggressive toward the passing walker.",
        "The man was knocked to the ground by the dog and may have been bitten or injured.",
        ("loose dog runs up", "dog jumps at man", "man knocked down", "dog off its leash"),
        "a dog chases a walker in the park, leaps at him and brings him down",
    ),
    DemoClip(
        "8", "drowning", 10, (3, 1), ((4, 9),),
        ("A swimmer in open water suddenly starts splashing and waving both arms, sinks lower and is thrown "
         "a ring buoy",),
        "The swimmer got into difficulty in deep water, probably from exhaustion or cramp, and could not "
        "stay afloat.",
        "The swimmer went under the surface and was in danger of drowning until a ring buoy was thrown to "
        "him.",
        ("swimmer waves arms", "splashing in water", "sinks below surface", "ring buoy thrown"),
        "a swimmer gets into trouble, thrashes about and starts to go under",
    ),
    DemoClip(
        "9", "robbery", 10, (6, 1), ((4, 7), (7, 9)),
        ("A masked man walks up to the counter and points a gun at the clerk, who raises his hands",
         "The robber grabs the yellow cash box from the counter and runs out of the shop"),
        "The masked man intended to rob the shop and threatened the clerk with a gun to get the money.",
        "The shop's cash box was stolen, the clerk was left frightened behind the counter and the robber "
        "escaped.",
        ("masked man points gun", "clerk raises hands", "robber takes cash box", "robber runs out",
         "shop robbed"),
        "an armed man in a mask holds up the shopkeeper and flees with the till",
    ),
    DemoClip(
        "10", "red_light", 8, (10, 1), ((4, 6),),
        ("While traffic waits at a red light, an orange car speeds through the junction and nearly hits a "
         "pedestrian who jumps back",),
        "The driver of the orange car ignored the red traffic light and drove too fast through the crossing.",
        "A pedestrian was almost hit and had to jump back, putting people at the crossing in danger; the "
        "car drove on.",
        ("car runs red light", "orange car speeding", "pedestrian nearly hit", "traffic waits at light"),
        "an orange car races through a junction against the signal, narrowly missing someone on foot",
    ),
    DemoClip(
        "11", "forest_fire", 10, (9, 2), ((2, 10),),
        ("A fire starts at one tree on the hillside and spreads from tree to tree along the ridge under "
         "growing smoke",),
        "Dry vegetation caught fire and the flames were spread by wind from one tree to the next.",
        "The whole row of trees was burning and a large cloud of smoke covered the hillside.",
        ("fire starts at one tree", "flames spread between trees", "large smoke cloud", "forest burning"),
        "a wildfire breaks out on a wooded ridge and moves along the treeline",
    ),
    DemoClip(
        "12", "boat", 10, (3, 2), ((3, 5), (5, 9)),
        ("A small boat with two people starts rocking violently as the waves grow",
         "The boat tips over and capsizes, throwing both people into the water"),
        "The small boat was caught in rough waves and was overloaded for the conditions, so it lost its "
        "balance.",
        "The boat capsized and floated upside down, and both passengers ended up in the water struggling "
        "to stay afloat.",
        ("boat rocks in waves", "boat capsizes", "people thrown into water", "rough waves"),
        "a small rowing boat overturns in choppy water and its two occupants fall in",
        {"flip_at": 5.0},
    ),
    DemoClip(
        "13", "fireworks", 9, (11, 3), ((3, 7),),
        ("A man lights fireworks in the middle of a street and they burst in bright sparks above the road "
         "and passing cars",),
        "The man set off fireworks on a busy street where it is forbidden and unsafe.",
        "Sparks rained down over the street and passing traffic, creating a fire hazard and frightening "
        "people nearby.",
        ("man lights fireworks", "sparks burst over street", "fireworks on busy road", "fire hazard"),
        "someone launches fireworks over a road with cars going past",
    ),
    DemoClip(
        "14", "smash", 9, (4, 1), ((4, 7),),
        ("A man in red kicks over a rubbish bin and then smashes the glass pane of a bus shelter, scattering "
         "shards",),
        "The man was acting aggressively and deliberately damaged public facilities on the street.",
        "The rubbish bin was knocked over, the bus shelter glass was shattered and broken glass covered the "
        "pavement.",
        ("kicks over rubbish bin", "smashes bus shelter glass", "glass shards scattered",
         "public facility damaged"),
        "a man in red wrecks a bin and a bus stop on the street",
    ),
)
