"""A small multi-story news week written for these tests (fictional places and outlets).

The biggest story (a bridge collapse in Velmora: five articles, four outlets) has a death toll that rises over
three days and a vague figure beside the exact ones; a port strike has three articles, a flood two, and three
stories one each. One article is a week older, so a summary of the last three days leaves it out.
"""

from __future__ import annotations

from datetime import datetime

from retrieval.documents import Article

ROWS: list[tuple[str, str, str, str, str]] = [
    ("https://harbour-times.test/bridge-1", "Velmora bridge collapses during rush hour", "Harbour Times",
     "2024-03-04T08:00:00+00:00",
     "The Old Mill bridge in Velmora collapsed during the morning rush hour on Monday, killing 38 people, "
     "the city's fire service said.\nRescue teams searched the river for survivors through the day."),
    ("https://coastal-wire.test/bridge-2", "Rescuers search river after Velmora bridge collapse", "Coastal Wire",
     "2024-03-04T15:00:00+00:00",
     "More than 40 people are feared dead after the Old Mill bridge in Velmora fell into the river, "
     "officials said.\nDivers worked through the afternoon in strong currents."),
    ("https://harbour-times.test/bridge-3", "Velmora bridge death toll climbs to 41", "Harbour Times",
     "2024-03-05T09:00:00+00:00",
     "The death toll from the Velmora bridge collapse climbed to 41 on Tuesday, the fire service said, as "
     "divers recovered three more bodies.\nThe mayor declared three days of mourning."),
    ("https://north-ledger.test/bridge-4", "Engineers warned about Velmora bridge, records show", "North Ledger",
     "2024-03-05T18:00:00+00:00",
     "Engineers warned the Velmora council about cracks in the Old Mill bridge two years before it "
     "collapsed, records show.\nThe council said it would cooperate with the inquiry into the collapse."),
    ("https://daily-current.test/bridge-5", "Velmora mourns 44 victims of bridge collapse", "Daily Current",
     "2024-03-06T07:00:00+00:00",
     "Velmora held a vigil on Wednesday for the 44 victims of the Old Mill bridge collapse, after the fire "
     "service said the number of dead had risen to 44.\nAt least 60 people were injured in the collapse, "
     "the health ministry said."),
    ("https://coastal-wire.test/port-1", "Dockworkers strike at Port Saren", "Coastal Wire",
     "2024-03-04T10:00:00+00:00",
     "Dockworkers at Port Saren walked out on Monday in a dispute over pay, halting container traffic.\n"
     "The union said the strike would last until the port authority made a new offer."),
    ("https://north-ledger.test/port-2", "Port Saren strike strands hundreds of containers", "North Ledger",
     "2024-03-05T11:00:00+00:00",
     "Hundreds of containers are stranded at Port Saren as the dockworkers' strike enters its second day.\n"
     "Shipping companies began diverting vessels to other ports."),
    ("https://harbour-times.test/port-3", "Port Saren strike ends with pay deal", "Harbour Times",
     "2024-03-06T06:00:00+00:00",
     "The Port Saren dockworkers' strike ended on Wednesday after the union accepted a pay rise of six "
     "percent.\nContainer traffic is expected to return to normal by Friday."),
    ("https://daily-current.test/flood-1", "Floods in the Arrow valley force evacuations", "Daily Current",
     "2024-03-05T06:00:00+00:00",
     "Heavy rain flooded villages in the Arrow valley on Tuesday, and 1,200 residents were evacuated, "
     "the regional government said.\nRoads to the valley remain closed."),
    ("https://coastal-wire.test/flood-2", "Arrow valley flood waters begin to recede", "Coastal Wire",
     "2024-03-06T05:00:00+00:00",
     "Flood waters in the Arrow valley began to recede on Wednesday, and 1,500 residents have now been "
     "displaced, the regional government said.\nEngineers are inspecting the damaged dams."),
    ("https://north-ledger.test/library", "Velmora library reopens after renovation", "North Ledger",
     "2024-03-05T13:00:00+00:00",
     "The Velmora public library reopened on Tuesday after a two-year renovation that added a children's "
     "wing.\nThe library will stay open late on weekdays."),
    ("https://daily-current.test/football", "Saren Rovers win the regional cup", "Daily Current",
     "2024-03-05T21:00:00+00:00",
     "Saren Rovers won the regional football cup on Tuesday night, beating Velmora Athletic 2-1 in the final.\n"
     "Thousands of fans celebrated in the streets of Saren."),
    ("https://harbour-times.test/tram", "New tram line opens in Saren", "Harbour Times",
     "2024-03-04T12:00:00+00:00",
     "A new tram line linking Saren's harbour to the university opened on Monday.\n"
     "The city expects twenty thousand passengers a day."),
    ("https://coastal-wire.test/old", "Fishing fleet returns to Saren for the winter", "Coastal Wire",
     "2024-02-27T09:00:00+00:00",
     "The Saren fishing fleet returned to harbour for the winter on Tuesday after a poor season.\n"
     "Catches were down by a third, the fishermen's association said."),
]


def week_articles() -> list[Article]:
    """The rows as articles, as a JSON feed would give them."""
    return [Article(text=text, source_key=url, title=title, url=url, source=outlet,
                    published=datetime.fromisoformat(published), kind="url")
            for url, title, outlet, published, text in ROWS]
