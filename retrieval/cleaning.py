"""Page clutter out of article text, before chunking: nothing that is not the story becomes a sentence.

News pages carry furniture that extractors keep as paragraphs: datelines ("Kisumu, Kenya CNN —"),
bylines and contributor lines, photo captions and credits ("Kim Hong-ji/Reuters A woman reacts…"),
video and ad widgets ("Video Ad Feedback … 03:37 - Source: CNN"), newsletter and subscription pitches,
"Editor's Note" and "Related:" lines, and teaser headlines cut off with "...". Each rule below was
measured on real pages (``bench/bench_cleaning.py``). Rules work on whole lines (one paragraph per
line after :func:`retrieval.text.normalize`), except the dateline that opens a paragraph, which is cut
from its sentence. What is removed is returned with the rule that removed it, so nothing is lost: the
ingest pipeline keeps it with the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from retrieval.text import sentence_spans, sentences

# Bump when a rule changes: re-ingesting then re-cleans every document (its text, so its hash, changes).
CLEANER_VERSION = "k7"

_AGENCY = (r"(?:CNN(?: Business| Sport| Travel| Style| Politics| Health)?|Reuters|AP|AFP|Associated Press|"
           r"Bloomberg|AAP|PTI|ANI|IANS|Xinhua|TASS|EFE|dpa|UPI)")
_PLACE = r"[A-Z][\w.'’-]*(?:[ -][A-Z][\w.'’-]*){0,3}"  # "New York", "SAN JUAN", "Port-au-Prince"
_US_STATE = (r"(?:Ala|Ariz|Ark|Calif|Colo|Conn|Del|Fla|Ga|Ill|Ind|Kan|Ky|La|Md|Mass|Mich|Minn|Miss|Mo|Mont|"
             r"Neb|Nev|N\.H|N\.J|N\.M|N\.Y|N\.C|N\.D|Okla|Ore|Pa|R\.I|S\.C|S\.D|Tenn|Tex|Vt|Va|Wash|W\.Va|Wis|Wyo)")
_PLACES = rf"{_PLACE}(?:, {_PLACE}){{0,2}}"  # "Kisumu, Kenya", "Washington, D.C."
_PHOTO_AGENCIES = ("Reuters", "AP", "AFP", "Getty Images", "Getty", "EPA", "EPA-EFE", "Shutterstock", "Bloomberg",
                   "Anadolu Agency", "Anadolu", "SOPA Images", "LightRocket", "NurPhoto", "Sipa", "Sipa USA", "Alamy",
                   "ZUMA Press", "Zuma", "USA TODAY", "USA TODAY Sports", "CNN", "Imagn", "Xinhua", "TASS", "Sputnik",
                   "Kyodo", "Yonhap", "AAP", "PA", "Pool", "Redux", "Polaris", "picture alliance", "dpa")
_PHOTO_AGENCY = f"(?:{'|'.join(map(re.escape, _PHOTO_AGENCIES))})"
_CREDIT_NAME = r"[A-Z][\w'’.-]+(?:[ -][A-Z][\w'’.-]+){0,3}"
# "Kim Hong-ji/Reuters", "Jacob W. Frank/National Park Service/AP", "Robyn Beck/AFP via Getty Images"
_CREDIT = rf"{_CREDIT_NAME}(?:/{_CREDIT_NAME}){{0,2}}/{_PHOTO_AGENCY}(?: via {_PHOTO_AGENCY})?"

# A paragraph that is only a dateline: "CNN —", "Kisumu, Kenya CNN —", "New York CNN Business —".
_DATELINE_LINE = re.compile(rf"^(?:{_PLACES}\s+)?\(?{_AGENCY}\)?\s*[—–-]+$")
# A dateline opening a paragraph: "Brisbane, Australia (CNN) Voters…", "KABUL (Reuters) - The…",
# "WASHINGTON (AP) — The…", "(CNN) Pfizer…". Only agencies in brackets, so "Reuters said" is never cut.
_DATELINE_PREFIX = re.compile(
    rf"^(?:(?:{_PLACES}\s+)?\({_AGENCY}\)\s*(?:[—–-]+\s*)?|"
    # "SAN FRANCISCO — It's…", "LONDON– Climate…", "TOKYO - Toyota said…", "BRUSSELS—The…" (glued to its
    # sentence only after five or more capitals: "NATO–Russia talks" and "U.S.–China trade" open sentences)
    r"[A-Z][A-Z.'’ -]{2,30}[A-Z.](?:, [A-Z][\w.'’ -]{1,30})?"
    r"(?:\s+(?:[—–]|--)\s+(?=\S)|(?:[—–]\s+|\s+(?:[—–]|--)|\s*-\s+|(?<=[A-Z.]{5})[—–])(?=[A-Z0-9\"'“‘])))"
)

# A time of day as pages stamp it: "4:16 PM", "12:45 p.m. ET"
_CLOCK = (r"\d{1,2}:\d{2}\s?(?:[ap]\.m\.|[AP]\.M\.|[ap]m|[AP]M)"
          r"(?: (?:ET|EST|EDT|CT|CST|CDT|MT|MST|MDT|PT|PST|PDT|GMT|BST|UTC|IST|CET|CEST))?")
# A live blog's label glued to its entry: "The Latest from Wimbledon (all times local): Serena…", "2:48 PM: The…"
_LIVE_PREFIX = re.compile(rf"^(?:The Latest\b[^:.!?]{{0,100}}|[^:.!?]{{1,100}}\(all times local\)|{_CLOCK})"
                          r"\s*[:—–|-]\s*(?=\S)")

# A quiz's choice: 'D. Petco', 'A. "Friends"' (a Q&A's long "A. Some two years after…" answer is content)
_QUIZ_CHOICE = re.compile(r"^[A-D][.)] (?=(?:\S+\s+){0,7}\S+$)[^.!?]*[\"”’]?$")

@dataclass(frozen=True)
class _Rule:
    """A line rule: a line is clutter of kind ``name`` when ``pattern`` is found in it.

    Most lines are story prose that no rule matches, and searching a line costs far more than a substring test,
    so a rule with ``needs``, ``ends`` or ``gate`` is searched only in lines that contain one of ``needs``, end
    with one of ``ends``, or where ``gate`` is found. ``needs`` are in lower case, looked for in the line's
    :func:`_folded` form, or with ``cased`` as written: the words a case-sensitive pattern opens a sentence with
    ("Thank", "Have a") are far rarer than their lower-case forms. ``gate`` is a pattern quick to search (it
    opens with a literal) for what a substring cannot say, such as "here" as a word; it decides alone. Each is a
    test that every line the pattern matches passes: it only saves time, it never changes what is removed.
    """

    name: str
    pattern: re.Pattern[str]
    needs: tuple[str, ...] = ()
    ends: tuple[str, ...] = ()
    cased: bool = False
    gate: re.Pattern[str] | None = None

    tested: bool = field(init=False)  # whether the rule has a quick test (``needs``, ``ends`` or ``gate``)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tested", bool(self.needs or self.ends or self.gate))

    def skips(self, line: str, folded: str) -> bool:
        """Whether ``line`` (``folded``: its :func:`_folded` form) lacks what the pattern needs, so no search."""
        if self.gate is not None:
            return self.gate.search(line) is None
        if not (self.needs or self.ends) or line.endswith(self.ends):
            return False
        # map, not a generator: a generator costs more than the substring tests themselves
        if not self.cased:
            return not any(map(folded.__contains__, self.needs))
        # a sentence opens in lower case ("have a great weekend") only at the start of its line
        return not any(map(line.__contains__, self.needs)) and not (
            line[:1].islower() and any(map((line[0].upper() + line[1:]).__contains__, self.needs)))


_MONTH = (r"(?:January|February|March|April|May|June|July|August|September|October|November|December|"
          r"Jan\.|Feb\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.)")
_WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
# Present-tense verbs of a photo's description ("Francia Marquez is seen at…", "Fans look on as…")
_PICTURED_VERB = (r"(?:is|are) seen(?! as\b| by\b| to\b)|looks? on|poses?|gestures?|reacts?|waves?|stands?|"
                  r"walks?|sits?|holds?|attends?|arrives?|celebrates?|embraces?|hugs?|prays?|mourns?|cries|smiles?|listens?|"
                  r"carries|rides?|gathers?|marches|march|protests?|takes? part|pays? (?:their |his |her )?respects|"
                  r"lays? flowers|lines? up|greets?|shakes? hands|speaks?|visits?|inspects?|watches|watch")
# A sentence that ends with a figure: "… on February 4, 2021." (a line's last sentence, or one before a space)
_DIGIT_DOT = tuple(f"{digit}." for digit in "0123456789")
# What a picture of a scene shows happening: "A full moon rises behind the temple…", "Lanterns are displayed…"
_SCENE_VERB = (r"rises|rise|sets|shines|glows|burns|blooms|floats|flies|(?:is|are) (?:pictured|displayed|illuminated|"
               r"lit up)|lights? up")


def _quick_tests(rules: tuple[_Rule, ...]) -> tuple[_Rule, ...]:
    """The quick tests of ``rules`` at once: their ``needs`` and ``ends`` merged (one run of substring tests, not
    one per rule), their gates, and every rule without a quick test. All of them skip a line exactly when each
    of ``rules`` does."""
    folded = _Rule("quick", re.compile(""), tuple(dict.fromkeys(n for r in rules if not r.gate and not r.cased
                                                                 for n in r.needs)),
                   tuple(dict.fromkeys(e for r in rules if not r.gate for e in r.ends)))
    cased = _Rule("quick", re.compile(""), tuple(dict.fromkeys(n for r in rules if not r.gate and r.cased
                                                                for n in r.needs)), cased=True)
    return (*(merged for merged in (folded, cased) if merged.tested),
            *(rule for rule in rules if rule.gate or not rule.tested))


# How a newsletter's note to its readers opens: "👋 Hey pals!", "Good morning,", "Happy Friday" (a waving hand too)
_NOTE_OPENING = (r"[^\w\s]{0,3}\s*(?:Hi|Hello|Hey|Howdy|Greetings|Good (?:morning|afternoon|evening)|Morning|"
                 r"Happy [A-Z][a-z]+)(?: [a-z]+)?")

_LINE_RULES: tuple[_Rule, ...] = (
    _Rule("dateline", _DATELINE_LINE),
    _Rule("dateline", re.compile(rf"^{_PLACE}, {_US_STATE}\.$")),  # "Albany, Ga." alone
    # a section label in capitals ("BREAKFAST BROWSE"), or a list number left alone on its line ("4.")
    _Rule("heading", re.compile(r"^[A-Z][A-Z0-9'’&,. -]{2,60}:?$|^\d{1,2}\.$|^[_=*~•-]{3,}$|"
                                r"^What else is on our reading list:$")),
    _Rule("caption", re.compile(  # credits: "(Photo by X/Getty Images)", "(AP Photo/Rich Pedroncelli)"
        r"\((?:AP |Reuters |AFP )?Photos?(?: by|:|/)[^)]*\)|\(Image(?: credit)?:[^)]*\)", re.I)),
    _Rule("caption", re.compile(  # Getty style: "SCHWEDT, GERMANY - MAY 03: In this aerial view…"
        r"^[A-Z][A-Z .,'’-]+ - (?:JANUARY|FEBRUARY|MARCH|APRIL|MAY|JUNE|JULY|AUGUST|SEPTEMBER|OCTOBER|"
        r"NOVEMBER|DECEMBER) \d{1,2}:")),
    _Rule("caption", re.compile(  # credit first: "Kim Hong-ji/Reuters A woman reacts outside…"
        rf"^{_CREDIT}(?:\s|$)"), needs=("/",)),
    _Rule("caption", re.compile(  # who is where in a picture: "Holmes, left center, departs…", "Keith Richards (R)"
        r"^(?=(?:\S+\s+){0,59}\S+$).*(?:, (?:(?:second |third )?from (?:left|right)|left|right|center|centre)"
        r"(?: center)?,|\((?:left|right|center|L|R|C|from left|from right)\))"),
        needs=(", second from ", ", third from ", ", from ", ", left", ", right", ", center", ", centre", "(l)", "(r)",
               "(c)", "(left)", "(right)", "(center)", "(from ")),
    _Rule("caption", re.compile(  # a gallery: "Photos: Russia invades Ukraine Young people… Hide Caption 2 of 226",
        # a caption's label or its credit after it: "Pictured: …", "… on Monday. Photograph: Jane Doe/The Guardian"
        r"(?:^|[.!?]\s+)(?:Photos?|PHOTOS?|Gallery|GALLERY|In pictures|In photos|Photograph|Image|Picture|Pictured|"
        r"Caption|Illustration|Photo illustration|(?:Photo|Image) credit|Top image|Main image):\s|"
        r"\bHide Caption \d+ of \d+$|"
        rf"^(?=(?:\S+\s+){{0,7}}\S+$).*\bCourtesy {_CREDIT_NAME}$"),  # "Nicole Hemmer Courtesy Nicole Hemmer"
        needs=("photo:", "photos:", "gallery:", "in pictures:", "photograph:", "image:", "picture:", "pictured:",
               "caption:", "illustration:", "credit:", "hide caption ", "courtesy ")),
    # an agency's file picture and its caption: "FILE - In this photo provided by …, Kim Jong Un visits …"
    _Rule("caption", re.compile(r"^(?:FILE|File)(?: PHOTO| photo)?\s*[-–—:]\s")),
    # a picture dated by its month alone, a paragraph of its own: "A full moon rises behind the Temple of Poseidon
    # at Cape Sounion, Greece, in June 2021." (inside a paragraph such a sentence can be the story's present tense)
    _Rule("caption", re.compile(
        rf"^(?=(?:\S+\s+){{3,59}}\S+$)[A-Z](?:[^.!?]|\.(?=\S))*\b(?:{_PICTURED_VERB}|{_SCENE_VERB})\b"
        rf"(?:[^.!?]|\.(?=\S))*(?:,| in| on| during) (?:early |mid-|late )?{_MONTH},? (?:19|20)\d\d\.$"),
        ends=_DIGIT_DOT),
    _Rule("caption", re.compile(  # credit last: "…on Saturday. John Rudoff/Reuters", "… Reuters"
        rf"(?:[.!?]\s+|^)(?:{_CREDIT}|{_PHOTO_AGENCY})$"), ends=_PHOTO_AGENCIES),
    _Rule("caption", re.compile(  # "… Courtesy Zachary Beard"
        rf"(?:[.!?]\s+|^)(?:Courtesy|Credit:|Photo:|Source:) {_CREDIT_NAME}(?:/{_PHOTO_AGENCY})?$"),
        needs=("courtesy ", "credit: ", "photo: ", "source: ")),
    _Rule("video", re.compile(  # video and ad widgets
        r"Video Ad Feedback|\bJUST WATCHED\b|\bMUST WATCH\b|Replay More Videos|\b\d{1,2}:\d{2}\s*-\s*Source:|"
        r"How relevant is this ad to you|Video player was slow to load"),
        needs=("video ad feedback", "just watched", "must watch", "replay more videos", "source:",
               "how relevant is this ad to you", "video player was slow to load")),
    _Rule("video", re.compile(
        r"^Ad Feedback$|^Now playing\b|^(?:Advertisement|ADVERTISEMENT|Ad|Sponsored|Sponsored Content)$|"
        r"^(?:Watch|WATCH|Listen|LISTEN)(?: the| now| live)?\s*(?::|$)|^Play Video$|^Hide Caption\b|"
        r"^(?:See|Watch|Hear|Listen to)\b.{0,150}(?<![.!?\"”’])$")),  # a video's teaser headline
    _Rule("newsletter", re.compile(  # sign-ups and subscription pitches
        r"\bSign up\b.{0,120}\b(?:newsletter|inbox|here|for free)\b|\bnewsletter\b.{0,80}\b(?:Sign up|subscribe)\b|"
        r"(?:delivered|straight) (?:right )?to your inbox|"
        r"\bSubscribe (?:to|now|here)\b.{0,60}\b(?:newsletter|podcast|print edition|updates)\b|"
        r"\bBecome a (?:digital )?subscriber\b|\bWe will use the details you have shared\b|"
        r"\bnewsletter provides you with\b|\b(?:Take|Try)\b.{0,40}\bquiz\b|\bsubscriber-only\b|"
        r"\bShare your thoughts\b.{0,40}\b(?:with|on) (?:us|USA TODAY|CNN)\b|\bA newsletter about\b|"
        r"\bplease subscribe\b|\bTry (?:any of )?our\b.{0,40}\b(?:newsletter|free)\b|"
        r"\boffered free of charge as a public service\b|\bstay with the\b.{0,40}\bsection\b", re.I),
        needs=("sign up", "newsletter", "to your inbox", "subscribe", "we will use the details", "quiz",
               "share your thoughts", "try our", "try any of our", "free of charge", "stay with the")),
    _Rule("newsletter", re.compile(
        r"^Would you like to receive\b|^(?:Prefer to listen|Short on time)\?|^Stories you're clicking on today|"
        r"^\(?Want to help\?|^Want (?:The [\w ]+|it|this) in your inbox\b|^\[.{0,200}\bSign up\b.{0,100}\]$|"
        r"^Don[’']t miss\b.{0,80}\bnewsletter\b|^For subscribers:|^This is a compilation of stories\b", re.I)),
    _Rule("quiz", _QUIZ_CHOICE),
    _Rule("embed", re.compile(  # an embedded post: "… pic.twitter.com/qjgY — Glastonbury (@glastonbury) June 22, 2022"
        r"\bpic\.twitter\.com/|— [^—]{1,60} \(@\w{1,30}\) [A-Z][a-z]+ \d{1,2}, \d{4}$"),
        needs=("pic.twitter.com/", "(@")),
    _Rule("related", re.compile(  # a link under a capitals label: "FALLOUT: College football's future appears to be …"
        r"^[A-Z][A-Z'’ -]{2,30}: (?=(?:\S+\s+){2,19}\S+$)[^.!?]*[^.!?\"'”’):;…,]$")),
    _Rule("newsletter", re.compile(  # a newsletter writer's chatter: "Julius here, tagging in for Alex today.",
        # "It's Thursday, and there's Beyoncé news, so let's get to it.", "👋 Hey! Ana Ruiz here, and it's …",
        # a note opening with a waving hand
        r"^(?:(?:Hi|Hello|Hey|Morning|Good morning)[,!]? )?[A-Z][a-z]+ here[,!—–-]|\btagging in\b|"
        rf"^{_NOTE_OPENING}[,!]? (?:[A-Z][a-z'’-]+ ){{1,2}}here[,!.—–-]|^👋|"
        r"^(?=(?:\S+\s+){0,24}\S+$).*\blet[’']s (?:get (?:to|into) it|dive in|get started|jump (?:in|right in))\b"),
        needs=(" here,", " here!", " here.", " here—", " here–", " here-", "tagging in", "let's ", "let’s ", "👋")),
    _Rule("related", re.compile(  # a teaser for a link or a picture: "Check out this casual photo of … So adorable."
        r"^Check out (?:this|these|our) (?=(?:\S+\s+){0,24}\S+$).*[^:]$")),
    _Rule("sponsor", re.compile(  # sponsorship, partner and affiliate disclosures
        r"\bis made possible in part by a grant from\b|\bis an? .{0,40}content partner\b|"
        r"\bIts content is produced independently\b|\bRecommendations are independently chosen\b|"
        r"\bPurchases you make through our links\b|\bThe product experts at\b|\bmay earn (?:us )?a commission\b",
        re.I),
        needs=("made possible in part by a grant from", "content partner", "its content is produced independently",
               "recommendations are independently chosen", "purchases you make through our links",
               "the product experts at", "may earn ")),
    _Rule("sponsor", re.compile(
        r"^The Motley Fool(?: (?:owns|has|recommends)\b|$)|^SPONSOR(?:ED)? CONTENT\b|"
        r"^Check back with\b.{0,80}\b(?:for|often)\b", re.I)),
    # a live blog's label, its entries' timestamped headlines, a page's time stamps: "The Latest on the war:",
    # "…(all times local):", "4:16 PM: County records first death", "Updated 3:45 PM ET, Thu June 23, 2022"
    _Rule("live", re.compile(r"\(all times local\):?$"), needs=("all times local",)),
    # (and a label alone above the newest entries: "The latest", "Latest updates" — not "Latest developments:",
    # which introduces the story's own list)
    _Rule("live", re.compile(rf"^The Latest\b[^.!?]{{0,100}}:$|^(?:The [Ll]atest|Latest)(?: (?:news|updates?|"
                             r"developments|headlines))?$|"
                             rf"^{_CLOCK}\s*[:—–|-]\s*.*[^.!?…\"”’)]$|^{_CLOCK}$|"
                             r"^(?:Updated|Published|Posted|Last updated|First published)(?: on| at)?:? [^.!?]{0,40}"
                             rf"(?:{_CLOCK}|\d{{4}})[^.!?]{{0,30}}$|"
                             r"^\d{1,2} (?:min(?:ute)?s?|hours?|hrs?) (?:ago|read)$|^\d{1,2}[- ]min(?:ute)? read$")),
    _Rule("editors-note", re.compile(r"^(?:Editor[’']?s[’']? [Nn]ote|EDITOR[’']?S NOTE|Corrections? (?:&|and) "
                                     r"[Cc]larifications?|Correction|CORRECTION|"
                                     r"Clarification)\s*[:—–-]|^This (?:story|article) has been updated\b")),
    _Rule("related", re.compile(
        r"^(?:Related|RELATED|More|MORE|Read [Mm]ore|READ MORE|See [Aa]lso|SEE ALSO|Also [Rr]ead|Read [Aa]lso|"
        r"Recommended|RECOMMENDED|Trending|TRENDING|Most [Rr]ead|Explore more|Keep reading|Don't miss|"
        r"Opinion|OPINION|Analysis|ANALYSIS|Live updates|LIVE UPDATES)\s*(?::|$)|^More [\w .'’-]{2,40} news$")),
    # A link's label glued to its headline: "Looking back:Amended Kentucky bill…" (a news brief that opens
    # with a glued place name runs longer than a headline, and "Answer:"/"Q:" open content)
    _Rule("related", re.compile(r"^(?!(?:Answer|Question|Q|A):)['\"‘“]?[A-Z][\w'’\"” ,&-]{1,80}:(?=[A-Z'\"‘“])"
                                r"(?=(?:\S+\s+){0,27}\S+$)"), gate=re.compile(r":[A-Z'\"‘“]")),
    _Rule("related", re.compile(r"^Read more\b.{0,80}$|^(?=(?:\S+\s+){0,15}\S+$).*\bclick here\b", re.I),
          needs=("read more", "click here")),
    _Rule("byline", re.compile(  # contact lines: a short one with an address or handle, or a reporter's details
        r"^(?=(?:\S+\s+){0,11}\S+$).*(?:\b[\w.+-]+@[\w-]+\.[\w.]+\b|(?:^|\s)@\w{3,})|"
        r"^(?=(?:\S+\s+){0,39}\S+$).*\b(?:can be (?:reached|contacted) (?:at|by)\b.{0,60}@|"
        r"[Ff]ollow (?:him|her|them|us|me)\b.{0,20}\bon Twitter)"), needs=("@", "on twitter")),
    _Rule("byline", re.compile(r"^[A-Z][\w.' -]{2,40}: [\d() -]{7,};")),
    _Rule("byline", re.compile(r"^[—–-]*\s*\(?.{0,200}\bcontributed (?:to )?this report\.?\)?$|"  # and a wire's:
                               # "Associated Press writer Amina Otieno in Nairobi contributed."
                               r"^(?=(?:\S+\s+){0,39}\S+$).*\b(?:[Ww]riters?|[Rr]eporters?|[Cc]orrespondents?|"
                               r"[Jj]ournalists?|Press|Reuters|[Ss]taff)\b.*\bcontributed(?: reporting)?\.?\)?$"),
          needs=("contributed",)),
    _Rule("byline", re.compile(  # bylines, contributors, author contact lines
        rf"^By [A-Z][\w'’.-]+(?: [A-Z]?[\w'’.-]+){{0,5}}(?:(?:,| and| &) [A-Z][\w'’.-]+(?: [A-Z]?[\w'’.-]+){{0,4}})*"
        rf"(?:,? (?:{_AGENCY}|USA TODAY|The Associated Press))?$|"
        r"^\(?(?:Reporting|Additional reporting|Writing|Editing)(?: by)? .{0,200}\)?$|"
        r"^Contributing:|^(?:From )?(?:USA TODAY Network|The Associated Press) and wire reports$|"
        rf"^[—–-]+\s*[A-Z][\w.'’ -]{{2,40}}, (?:{_AGENCY}|USA TODAY|The Associated Press)$|"
        rf"^(?:{_AGENCY}|USA TODAY|The Associated Press|AP|Staff|Editors)$|"
        r"^(?:Follow|Contact|Reach|Email)\b.{0,200}(?:@|\bTwitter\b|\bFacebook\b|\bInstagram\b|\bemail\b)|"
        r"^Email: \S+@\S+|^\S+@\S+\.\w+$|"
        # an author's bio and an opinion piece's disclaimer
        r"^[A-Z][\w.'’ -]{2,40} is (?:a |an |the )?(?:CNN|USA TODAY)['’]?s? (?:[\w-]+ ){0,4}(?:analyst|columnist|"
        r"contributor|correspondent|commentator|reporter|editor|writer|anchor)\b|"
        r"^The (?:views|opinions) expressed in this (?:commentary|column|article|piece) are\b")),
)
# The quick tests of the rules that have one, at once (:func:`_line_rule`)
_LINE_QUICK_TESTS = _quick_tests(tuple(rule for rule in _LINE_RULES if rule.tested))
# Characters that IGNORECASE matching takes for an ASCII letter but str.lower() does not turn into that letter
# alone (dotted and dotless I, the long s): folded to it, so a rule's ``needs`` never miss a line it matches.
_CASE_TWINS = str.maketrans({"İ": "i", "ı": "i", "ſ": "s"})


def _folded(line: str) -> str:
    """``line`` in lower case, for the substring tests of :class:`_Rule` ``needs``."""
    if "İ" in line or "ı" in line or "ſ" in line:  # rare: translating every non-ASCII line costs more than a search
        line = line.translate(_CASE_TWINS)
    return line.lower()


# Captions run together in one paragraph: "…on June 23. Ali Khara/Reuters A child stands…"
_RUN_ON_CREDIT = re.compile(rf"(?:^|[.!?]\s+){_CREDIT}\s+[A-Z]")
# A link or prompt closing a paragraph of story text: "…in his yard. Read more."
_TRAILING_PROMPT = re.compile(
    r"(?<=[.!?\"”’])\s+(?:Read more\b[^.!?]{0,80}|[^.!?]{0,60}\b[Cc]lick here\b[^.!?]{0,60})[.!]?$")
# A sentence that only points at a link: "You can read more about Judge Jackson here.", "Read about them here.",
# "Check your local forecast here.", "… brands as detailed here." ("$5 gas is already here." names no action)
_LINK_SENTENCE = re.compile(
    r"^(?=(?:\S+\s+){0,29}\S+$)(?:►\s*)?(?:(?:For|To|If|Here are)\b[^.!?]{0,120}?[,:] )?(?:[Yy]ou can |[Pp]lease )?"
    r"(?:[Rr]ead|[Ll]earn|[Ss]ee|[Cc]heck|[Ff]ind|[Ww]atch|[Ll]isten|[Ff]ollow|[Aa]sk|tick|[Cc]lick|[Ss]ubscribe|"
    r"[Ss]ign up|[Tt]ake a look|[Vv]iew|[Dd]onate)\b[^.!?]*\bhere\s*[.!]?[\"”’)]*$|"
    r"^.*\bas detailed here\.?$|^We took a look at\b[^.!?]*\bhere\.?$")
_MENU_ITEM = re.compile(r"^(?!\d)[\w'’&.-]+(?: [\w'’&.-]+){0,2}$")  # numbered lines are a ranking: content
_MENU_RUN = 6
# A headline: 4 to 25 words, no closing punctuation, and none of a data list's digits, colons or dashes.
_HEADLINE = re.compile(r"^[\"'‘“A-Z](?=(?:\S+\s+){3,24}\S+$)[^\d:–—]*[^.!?\"'”’):;…,\d]$")
_HEADLINE_RUN = 3
# (at most 16 words: a longer line without a full stop is prose that lost it; "Patients in ICU: 113, up from 111",
# "Method of travel: Charter" and "Linn County — one adult 41- to 60-years old" are data, not headlines)
_LOOSE_HEADLINE = re.compile(r"^[\"'‘“A-Z](?=(?:\S+\s+){3,15}\S+$)(?!.*:\s*[$£€]?\d)(?![^:]*:(?:\s*\S+){1,3}$)"
                             r"[^.!?…—–]*[^.!?\"'”’):;…,]$")
# How a line that is not a headline ends: both headline patterns refuse these last characters
_CLOSERS = tuple(".!?\"'”’):;…,")
_AUTHOR_BIO = re.compile(r"^[A-Z][\w.'’ -]{2,40} (?:is|was) an? (?:[\w-]+ ){0,5}(?:writer|journalist|columnist|"
                         r"contributor|reporter|correspondent|editor|analyst|professor|author)\b[^\n]{0,200}$")
_AUTHOR_NAME = re.compile(r"^[A-Z][a-z'’-]+(?: [A-Z]\.)?(?: [A-Z][a-z'’-]+){1,2}$")
_ELLIPSIS_END = re.compile(r"(?:\.\.\.|…)\s*[\"'”’]?$")
_ELLIPSIS_START = re.compile(r"^(?:\.\.\.|…)")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)]*$")
_TITLE_SUFFIX = re.compile(r"\s+[|–—-]\s+(?:[A-Z][\w.&' ]{1,40})$")
_TEASER_WORDS = 14  # teaser headlines are short; a cut-off quote in a long paragraph is the story's


@dataclass(frozen=True)
class Removal:
    """Text taken out of an article: the rule that matched and the exact line (or opening) removed."""

    rule: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "text": self.text}


@dataclass(frozen=True)
class Cleaned:
    """An article's text and title without the clutter, and everything removed from them."""

    text: str
    title: str
    removed: tuple[Removal, ...]


def _line_rule(line: str) -> str | None:
    folded = _folded(line)
    # most lines have nothing any rule with a quick test needs: those rules are then passed over at once
    tested = not all(test.skips(line, folded) for test in _LINE_QUICK_TESTS)
    for rule in _LINE_RULES:
        if rule.tested and (not tested or rule.skips(line, folded)):
            continue
        if rule.pattern.search(line):
            return rule.name
    if "/" in line and len(_RUN_ON_CREDIT.findall(line)) >= 2:
        return "caption"
    words = line.split()
    quoted = any(mark in line for mark in "\"“”")
    if len(words) <= _TEASER_WORDS and not quoted and (_ELLIPSIS_END.search(line) or _ELLIPSIS_START.search(line)):
        return "truncated"
    return None


def _is_loose_headline(line: str) -> bool:
    """A headline as a roundup lists them: like :func:`_is_headline`, but with figures or a label allowed
    ("US Open: English golfer Matt Fitzpatrick wins first major", "Someone paid $19 million for a lunch")."""
    if line.endswith(_CLOSERS):
        return False  # most lines: prose (a quick test before the pattern, which would say the same)
    return bool(_LOOSE_HEADLINE.match(line)) and sum(word[:1].islower() for word in line.split()) >= 2


def _is_headline(line: str) -> bool:
    """A story headline: sentence case ("Trump casino empire dogged by bad bets"), unlike a song or a name in
    Title Case, which a list in the story itself gives."""
    if line.endswith(_CLOSERS):
        return False
    return bool(_HEADLINE.match(line)) and sum(word[:1].islower() for word in line.split()) >= 2


def _layout_rules(lines: list[str], rules: list[str | None]) -> dict[int, str]:
    """Rules that need the lines around a line, as {line index: rule} (``rules``: each line's :func:`_line_rule`).

    * a run of ``_MENU_RUN`` or more one-to-three-word lines is a menu or a state picker ("Alabama", …);
    * a run of ``_HEADLINE_RUN`` or more headlines (no closing punctuation) is a list of links to other
      stories (a single one is the story's own subheading), unless a line ending in ":" introduces it;
    * a newsletter's link written twice (:func:`_repeated_links`) goes, both times;
    * a gallery repeats each caption on the next line: with two or more such pairs every copy is a
      caption, otherwise only the repeat goes.
    """
    found: dict[int, str] = {}
    for test, least, rule in ((_MENU_ITEM.match, _MENU_RUN, "menu"), (_is_headline, _HEADLINE_RUN, "related")):
        run: list[int] = []
        for index, line in enumerate([*lines, "."]):
            if test(line):
                run.append(index)
                continue
            intro = run[0] - 1 if run else -1
            introduced = intro >= 0 and lines[intro].endswith(":") and rules[intro] is None  # the story's own list
            if len(run) >= least and not introduced:
                found.update({i: rule for i in run if i not in found})
            run = []
    found.update({i: "related" for i in _roundup_headlines(lines, rules) if i not in found})
    teaser = _newsletter_teaser(lines, rules)
    if teaser is not None:
        found.setdefault(teaser, "newsletter")
    for index in range(len(lines) - 1):  # a quiz's question, right above its choices
        if lines[index].endswith("?") and _QUIZ_CHOICE.match(lines[index + 1]):
            found.setdefault(index, "quiz")
    for index in _repeated_links(lines):
        found.setdefault(index, "related")
    repeats = [i for i in range(1, len(lines)) if lines[i].strip() and lines[i] == lines[i - 1]]
    for index in repeats:
        found.setdefault(index, "caption" if len(repeats) >= 2 else "duplicate")
        if len(repeats) >= 2:
            found.setdefault(index - 1, "caption")
    return found


# A link's kicker and headline on one line ("'1776 Returns': Filing reveals … plan to storm buildings.")
_KICKER_LINK = re.compile(r"^[\"'‘“]?[A-Z\d][^:.!?]{0,40}[\"'’”]?: (?P<headline>(?:\S+ ){3,24}\S+[.!?])$")
_LINK_LIST_WORDS = 60


def _repeated_links(lines: list[str]) -> list[int]:
    """A newsletter's list of links that the extractor wrote twice: a line holding a link's kicker and headline,
    then a short paragraph that opens with that same headline and runs on into the next links' headlines
    ("Filing reveals … storm buildings. Trump raised millions to fight election fraud. Here's where that money
    went."). Each link reads like a sentence with its full stop; a story never repeats a labelled sentence as the
    opening of its next paragraph, so the repeat is what tells them apart. Both lines go."""
    found: list[int] = []
    for index in range(1, len(lines)):
        link = _KICKER_LINK.match(lines[index - 1])
        rest = lines[index][len(link["headline"]):] if link else ""
        # the repeat runs on into more links; a data list written twice ("May 1: … May 2: …") labels its items
        if (link and lines[index].startswith(link["headline"]) and ": " not in rest
                and len(lines[index].split()) <= _LINK_LIST_WORDS):
            found += [index - 1, index]
    return found


# A newsletter writer's note opening a line: a greeting ("👋 Hey pals! Ana here.", "Good morning, readers!" — not
# "Hello? Is anyone there?") or a waving hand
_NOTE = re.compile(rf"^(?:{_NOTE_OPENING}[,!]|[^\w\s]{{0,3}}\s*👋)")
_TEASER_WORDS_PER_SENTENCE = 25


def _newsletter_teaser(lines: list[str], rules: list[str | None]) -> int | None:
    """The line of a newsletter that previews its stories above the writer's note ("Historic flooding leaves
    devastation at the park. The stories of families lost in the war. And why a singer changed a lyric."), if
    any: the first line of prose left, two to five short sentences, the last opening with "And", right above a line
    that opens with a greeting. A story's lead above a greeting does not happen; a newsletter's preview reads
    like news, so the greeting below is what tells it apart."""
    # the first line of prose left (a headline above it, which ends like none, is the page's title)
    first = next((i for i, line in enumerate(lines) if not rules[i] and line.endswith(_CLOSERS)), None)
    if first is None:
        return None
    below = next((line for line in lines[first + 1:] if line), "")
    if not _NOTE.match(below):
        return None
    parts = sentences(lines[first])
    if not 2 <= len(parts) <= 5 or not parts[-1].startswith("And "):
        return None
    return first if all(len(part.split()) <= _TEASER_WORDS_PER_SENTENCE for part in parts) else None


def _roundup_headlines(lines: list[str], rules: list[str | None]) -> list[int]:
    """Headlines of a news roundup's links ("Prince William shares heartwarming Father's Day photo", "US Open:
    English golfer … wins first major", "Someone paid $19 million for …"): ``_HEADLINE_RUN`` or more
    :func:`_is_loose_headline` lines in a row, lines that a line rule removes (a teaser between two links)
    and empty lines not counting, unless a line ending in ":" introduces them."""
    found: list[int] = []
    run: list[int] = []
    intro = ""
    for index, line in enumerate([*lines, "."]):
        if index < len(lines) and (not line or rules[index]):
            continue  # transparent: removed anyway
        if _is_loose_headline(line):
            run.append(index)
            continue
        if len(run) >= _HEADLINE_RUN and not intro.endswith(":"):
            found += run
        run = []
        intro = line
    return found


_NICE = (r"(?:great|good|nice|wonderful|happy|safe|lovely|restful|relaxing|fantastic|terrific|fabulous|peaceful|"
         r"productive|awesome|fun)")

# Sentences that are page furniture wherever they stand in a paragraph (a line made only of them goes whole).
_SENTENCE_RULES: tuple[_Rule, ...] = (
    # ("here" as a word closing its sentence, not "there." or "where")
    _Rule("related", _LINK_SENTENCE, gate=re.compile(r"here(?<!\where)\s*(?:[.!\"”’)]|$)")),
    _Rule("related", re.compile(r"^(?=(?:\S+\s+){0,29}\S+$).*\b(?:[Cc]lick|[Tt]ap) here\b"),
          needs=("click here", "tap here")),
    # "Follow us on Twitter", "Follow AP's coverage of the war at https://…", "Read more of our coverage"
    _Rule("related", re.compile(
        r"^(?:Follow (?:us|me)|(?:Like|Find|Join) us)\b.{0,40}\b(?:on|at)\b|"
        r"^(?:Follow|Read|See|Find|Get|Catch up on|Keep up with)\b.{0,60}\bcoverage\b.{0,60}(?:\bat\b|https?://|\.?$)|"
        r"^(?=(?:\S+\s+){0,29}\S+$)(?:Follow|Read|See|Find|Get|Watch|Learn|Visit|Check|More|Listen|Download)\b"
        r".*(?:https?://|www\.)\S+$"),
        needs=("Follow", "Like us", "Find us", "Join us", "coverage", "http", "www."), cased=True),
    _Rule("newsletter", re.compile(  # a newsletter's greeting: "Happy Wednesday, OnPolitics readers!"
        # (addressed to the readers, or a short exclamation: "Hello, quiet, suburban Windsor." is the story's)
        r"^(?=(?:\S+\s+){0,29}\S+$)(?:Hi|Hello|Hey|Howdy|Greetings|Good (?:morning|afternoon|evening)|Morning|"
        r"Evening|Happy [A-Z][\w’']*(?: [A-Z][\w’']*)?|Welcome(?: back)?(?: to [^,!?.]{1,60})?)"
        r"(?:[,!]\s[^.!?]*\b(?:readers|subscribers|listeners|everyone|everybody|folks|friends|y[’']all|I[’']m|I am|"
        r"this is|it[’']s|we[’']re|and welcome)\b|[,!]?(?:\s[^.!?]{0,50})?!$|[!.]?$)"),
        needs=("Hi ", "Hi,", "Hi!", "Hi.", "Hello", "Hey", "Howdy", "Greetings", "Good morning", "Good afternoon",
               "Good evening", "Morning", "Evening", "Happy ", "Welcome"), ends=("Hi",), cased=True),
    _Rule("newsletter", re.compile(  # a newsletter's or a show's sign-off: "Thanks for reading!", "See you Monday."
        r"^(?=(?:\S+\s+){0,24}\S+$)(?:(?:Thanks|Thank you)(?: so much| again| as always)? for (?:reading|joining|"
        r"following|subscribing|tuning in|listening|watching|being a subscriber)\b|"
        rf"(?:See|Talk to|Catch) you (?:all )?(?:tomorrow|next|soon|then|later|again|on|in|{_WEEKDAY})\b|"
        r"Until (?:next time|tomorrow)\b|That[’']s (?:it|all) (?:for|from)\b|"
        r"(?:Hey, )?(?:[Hh]ave an?|[Ee]njoy (?:an?|your|the rest of your)) "
        rf"{_NICE} (?:[\w-]+ ){{0,3}}(?:day|weekend|week|evening|night|one|holiday|holidays)[.!]|"
        r"Stay (?:safe|well|cool|warm|dry|healthy)(?: out there)?[,.!])|\bwherever you get (?:your )?podcasts\b|"
        r"^Thanks(?: as always)? to\b.{1,100}\bfor (?:their|his|her) work on (?:the|this) (?:show|episode|podcast)"),
        needs=("Thank", "See you", "Talk to you", "Catch you", "Until next", "Until tomorrow", "That's it",
               "That's all", "That’s it", "That’s all", "Have a", "Hey, ", "Enjoy ", "Stay ", "podcasts"), cased=True),
    _Rule("newsletter", re.compile(  # a pitch: "Don't miss an update with the … newsletter", "Get … in your inbox"
        r"^(?:►\s*)?Don[’']t miss\b.{0,80}\bnewsletter\b|"
        r"^(?:►\s*)?(?:Sign up|Subscribe|Register)\b.{0,120}\b(?:newsletter|inbox|alerts|for free|free access)\b|"
        r"\b(?:Get|Receive|Have)\b.{0,100}\b(?:in|to|into) your inbox\b|^Here[’']s what you need to know to Get Up "
        r"to Speed and On [Ww]ith Your Day\.?$"),
        needs=("newsletter", "inbox", "Sign up", "Subscribe", "Register", "Get Up to Speed"), cased=True),
    _Rule("video", re.compile(  # audio players and ad slots: "Listen to this article", "Story continues below"
        r"^Listen to (?:this|the) (?:article|story)\b|^\(?(?:Story|Article|Text) continues (?:below|after)\b|"
        r"^Continue reading (?:below|the main story|after)\b|^Advertisement\b.{0,40}$|^Scroll (?:down )?to continue\b",
        re.I),
        needs=("listen to th", "continues below", "continues after", "continue reading", "advertisement",
               "to continue")),
    _Rule("editors-note", re.compile(  # "This story has been updated with…", "This is a developing story."
        r"^This (?:story|article|post|report) (?:has been|was|is being) (?:updated|corrected|revised)\b|"
        r"^(?:An earlier|A previous) version of this (?:story|article|report)\b|"
        r"^This is a developing (?:news )?story\b|^Check back (?:for|later|soon)\b"),
        needs=("This story", "This article", "This post", "This report", "version of this", "This is a developing",
               "Check back"), cased=True),
    _Rule("copyright", re.compile(  # "Copyright 2022 The Associated Press. All rights reserved.", Reuters' standards
        r"^(?:Copyright|COPYRIGHT|©|\(c\)|Copr\.)\s*(?:©\s*)?(?:\d{4}|[A-Z])|\bAll [Rr]ights [Rr]eserved\b|"
        r"^This material may not be (?:published|reproduced)\b|^Our Standards: The Thomson Reuters Trust Principles"),
        needs=("copyright", "©", "(c)", "copr.", "rights reserved", "this material", "trust principles")),
    # a roundup's or a gallery's intro: "Here are the week's top stories:", "…the stories that made headlines…"
    # (three rules, each searched only in sentences with its own words)
    _Rule("roundup", re.compile(
        r"^(?=(?:\S+\s+){0,39}\S+$)(?:Here are|Here[’']s|Here is|Below (?:are|is)|These are|Take a look|Check out|"
        r"Scroll (?:down|through)|Browse|Catch up on|Flip through|Click through|Look through|Swipe through|"
        r"In case you missed)\b[^.!?]*\b(?:top|biggest|latest|best|most[- ]read|most popular|notable|other|more|"
        r"day[’']s|week[’']s|today[’']s|month[’']s|year[’']s)\b[^.!?]*\b(?:stories|headlines|news|photos|pictures|images|"
        r"photographs|galler(?:y|ies)|snapshots|slideshow)\b"),
        needs=("Here", "Below ", "These are", "Take a look", "Check out", "Scroll ", "Browse", "Catch up on",
               "Flip through", "Click through", "Look through", "Swipe through", "In case you missed"), cased=True),
    _Rule("roundup", re.compile(
        r"^(?=(?:\S+\s+){0,39}\S+$).*\b(?:stories|headlines|photos|pictures|images)\b[^.!?]*\b(?:made headlines|"
        r"made news|you (?:may |might )?have missed|of the (?:day|week))\b"),
        needs=("made headlines", "made news", "have missed", "of the day", "of the week")),
    _Rule("roundup", re.compile(
        r"^(?=(?:\S+\s+){0,39}\S+$).*\b(?:rounds?|rounded) up\b[^.!?]*\b(?:stories|news|headlines)\b|"
        r"\b(?:photos|pictures|images) (?:that|which) caught (?:our|your) eye\b"),
        needs=("rounds up", "round up", "rounded up", "caught our", "caught your")),
    _Rule("caption", re.compile(  # a picture's description: "An aerial photo shows…", "In this photo of 2016, a…"
        r"^(?:FILE\s*[-–—]\s*)?In this (?:[\w-]+ ){0,3}(?:photo|image|picture|photograph|frame grab|screen ?grab|"
        r"video grab|handout)\b|^(?:An?|This) (?:(?:aerial|handout|file|undated|satellite|drone|still|overhead|AP|AFP|"
        r"Reuters) )?(?:photo|photograph|image|picture|screengrab|screenshot)(?: (?:taken|released|provided|made "
        r"available|distributed|obtained) by [^.!?]{1,80}?| taken [^.!?]{1,60}?)? shows\b"),
        needs=("In this ", " shows"), cased=True),
    # a picture's description ending with its date: "Supporters wave flags outside the court on May 3, 2022.",
    # "The logo … is seen on their headquarters in Frankfurt, on February 4." (the sentence ends with the date,
    # before a space or at the end of its line)
    _Rule("caption", re.compile(
        rf"^(?=(?:\S+\s+){{3,59}}\S+$)[A-Z][^.!?]*\b(?:{_PICTURED_VERB})\b[^!?]*(?:,| on| in) (?:{_WEEKDAY},? )?"
        rf"{_MONTH} \d{{1,2}}, (?:19|20)\d\d\.$"),
        gate=re.compile(rf"{_MONTH} \d{{1,2}}, (?:19|20)\d\d\.(?=\s|$)")),
    _Rule("caption", re.compile(
        rf"^(?=(?:\S+\s+){{3,59}}\S+$)[A-Z][^.!?]*\b(?:is|are) seen\b(?! as\b| by\b| to\b)[^!?]* on "
        rf"(?:{_WEEKDAY},? )?{_MONTH} \d{{1,2}}(?:, (?:19|20)\d\d)?\.$"), gate=re.compile(r"seen\b")),
)
# A line that all of them skip (most lines) is not even split into sentences
_SENTENCE_QUICK_TESTS = _quick_tests(_SENTENCE_RULES)


def _furniture_sentences(line: str) -> tuple[str, list[Removal]]:
    """``line`` without its sentences that are page furniture (:data:`_SENTENCE_RULES`), and those."""
    folded = _folded(line)
    # a rule the line lacks the needs of cannot match any of its sentences: most lines are not even split
    if all(test.skips(line, folded) for test in _SENTENCE_QUICK_TESTS):
        return line, []
    rules = [rule for rule in _SENTENCE_RULES if not rule.skips(line, folded)]
    spans = sentence_spans(line)
    dropped = {}
    for a, b in spans:
        sentence = line[a:b].strip()
        folded = _folded(sentence)  # each rule is searched only in sentences with what it needs
        rule = next((rule for rule in rules if not rule.skips(sentence, folded) and rule.pattern.search(sentence)),
                    None)
        if rule:
            dropped[(a, b)] = Removal(rule.name, sentence)
    if not dropped:
        return line, []
    kept = " ".join(line[a:b].strip() for a, b in spans if (a, b) not in dropped)
    return kept, list(dropped.values())


def clean_text(text: str) -> tuple[str, list[Removal]]:
    """``text`` (one paragraph per line) without clutter lines and opening datelines, and what was removed."""
    kept: list[str] = []
    removed: list[Removal] = []
    lines = [line.strip() for line in text.split("\n")]
    rules: list[str | None] = []
    furniture: list[tuple[str, list[Removal]]] = []  # each line without its furniture sentences, and those
    for line in lines:
        rule = _line_rule(line) if line else None
        furniture.append((line, []) if rule or not line else _furniture_sentences(line))
        kept_part, dropped = furniture[-1]
        rules.append(rule or (dropped[0].rule if dropped and not kept_part else None))  # only furniture: all goes
    layout = _layout_rules(lines, rules)
    first = next((i for i, line in enumerate(lines) if line), None)
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i]), None)
    for index, line in enumerate(lines):
        rule = layout.get(index) or rules[index]
        if rule is None and index == first and _AUTHOR_NAME.match(line):
            rule = "byline"  # a name alone above the story is its author
        if rule is None and index in (first, last) and _AUTHOR_BIO.match(line):
            rule = "byline"  # "Sara Stewart is a film and culture writer who lives in…", above or below the story
        if rule:
            removed.append(Removal(rule, line))
            continue
        whole = line
        opening = _DATELINE_PREFIX.match(line)
        if opening:
            removed.append(Removal("dateline", opening.group(0).strip()))
            line = line[opening.end():]
        prompt = ("Read more" in line or "lick here" in line) and _TRAILING_PROMPT.search(line)
        if prompt:
            removed.append(Removal("related", prompt.group(0).strip()))
            line = line[: prompt.start()]
        live = _LIVE_PREFIX.match(line) if "Latest" in line or "all times local" in line or ":" in line[:8] else None
        if live:
            removed.append(Removal("live", live.group(0).strip()))
            line = line[live.end():]
        line, dropped = furniture[index] if line is whole else _furniture_sentences(line)
        removed.extend(dropped)
        if line or not dropped:  # a line that was only furniture goes; empty lines keep the paragraphs
            kept.append(line)
    return "\n".join(kept).strip(), removed


def clean_title(title: str, outlet: str = "") -> tuple[str, list[Removal]]:
    """A headline without the site's name after it (" - CNN") and without a dangling "..." cut-off."""
    removed: list[Removal] = []
    suffix = _TITLE_SUFFIX.search(title)
    if suffix and _is_site_suffix(suffix.group(0), outlet):
        removed.append(Removal("title-site", suffix.group(0).strip()))
        title = title[: suffix.start()]
    cut = _ELLIPSIS_END.search(title)
    if cut and not _SENTENCE_END.search(title[: cut.start()].rstrip()):
        removed.append(Removal("title-truncated", title[cut.start():].strip()))
        title = title[: cut.start()].rstrip(" ,;:-–—") + "…"
    return title.strip(), removed


def _is_site_suffix(suffix: str, outlet: str) -> bool:
    name = suffix.strip(" |–—-").lower()
    known = {"cnn", "cnn politics", "cnn business", "reuters", "bbc news", "al jazeera", "the guardian",
             "usa today", "the week", "the week uk", "ap news", "associated press", "the new york times",
             "the washington post", "npr", "tolonews", "pajhwok afghan news", "fox news", "nbc news"}
    return name in known or (bool(outlet) and name == outlet.lower())


def clean_article(text: str, title: str = "", outlet: str = "") -> Cleaned:
    """Clean an article's normalized text and its title (see the module docstring).

    A first line that only repeats the headline goes too: the title is shown and embedded on its own.
    """
    body, removed = clean_text(text)
    headline, title_removed = clean_title(title, outlet)
    first, _, rest = body.partition("\n")
    if first and first.casefold() in {title.strip().casefold(), headline.casefold()}:
        removed.insert(0, Removal("headline", first))
        body = rest.strip()
    return Cleaned(body, headline, tuple(title_removed + removed))
