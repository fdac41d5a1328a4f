"""What a person told us about themselves, read from Korean text with plain rules.

    extract_profile("생후 2개월 아기가 열이 나요")  # {'age_months': 2, 'is_child': True}
    extract_profile("모유 수유 중인데 감기약 먹어도 돼요?")  # {'breastfeeding': True}

Rules, not a model: they must be predictable, fast and testable. Durations ("3개월 전부터") are
kept apart from ages ("3개월 된 아기") by the words around the number. Which ages make an infant,
a child or an elderly person is ``kmed.populations``'s to say, not this module's.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from kmed.populations import age_in_months, is_pediatric, populations

_NUM_WORDS = {"한": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9, "열": 10}

# "태어난 지 3주 됐어요" says an age as plainly as "생후 3주".
_AGE_MONTHS = re.compile(r"(?:(?:생후|태어난\s*지)\s*(\d{1,2})\s*개월|(\d{1,2})\s*개월\s*(?:된|짜리|아기|아이|애기|영아|남아|여아|차|이에요|예요|인데))")
_AGE_DAYS = re.compile(r"(?:(?:생후|태어난\s*지)\s*(\d{1,3})\s*일|(\d{1,3})\s*일\s*(?:된|짜리)\s*(?:아기|애기|신생아))")
_AGE_WEEKS_BABY = re.compile(r"(?:(?:생후|태어난\s*지)\s*(\d{1,2})\s*주|(\d{1,2})\s*주\s*(?:된|짜리)\s*(?:아기|애기|신생아))")
_AGE_YEARS = re.compile(r"(?:만\s*)?(\d{1,3})\s*(?:살|세)(?!\s*(?:번|회|때부터|쯤부터))")
_AGE_YEARS_WORDS = re.compile(r"(?<![가-힣])(다섯|여섯|일곱|여덟|아홉|한|두|세|네|열)\s*살")
# 돌 counts birthdays of a small child: "두돌 아기" is 2 years old, "돌쟁이"/"돌 된" is 1.
_AGE_DOL = re.compile(r"(?<![가-힣0-9])(\d|한|두|세|네)?\s*돌(?=\s*(?:쟁이|된|지난|아기|아이|애기|이에요|예요|인데|$))")
_AGE_DECADE = re.compile(r"(\d)0\s*대\s*(?:초반|중반|후반)?\s*(?:남성|여성|남자|여자|이에요|예요|인데|입니다|엄마|아빠|직장인|아버지|어머니|할머니|할아버지|남편|아내|부모님)?")
_PREGNANT_WEEKS = re.compile(r"임신\s*(\d{1,2})\s*주")
_PREGNANT = re.compile(r"(임신\s*(?:중|했|한\s*지|초기|중기|후기|말기|막달|했어요|이에요|예요|상태)|임산부|임신부|임부|뱃속\s*아기|태동"
                       r"|만삭|막달|(?i:pregnan|preg\s*\d))")
_NOT_PREGNANT = re.compile(r"임신\s*(?:은|이)?\s*(?:아니|안\s*했|안했|하지\s*않)")
# School grades count too: 초1–6, 중1–3, 고1–3 are children for 소아청소년과 (up to 18).
_CHILD = re.compile(r"(아기|애기|신생아|영아|유아|우리\s*아이|아이가|아이는|우리\s*애|애가|애는|아들|딸|초등학생|유치원"
                    r"|중학생|고등학생|(?<![가-힣0-9])(?:초|중|고)\s*[1-6](?![0-9]))")
# Breastfeeding (feeding breast milk, pumping included); formula ("분유 수유 중") is not.
_BREASTFEEDING = re.compile(r"(모유\s*수유|모유를?\s*(?:먹[이여]|줘|주고|주는|주며)|젖을?\s*(?:먹이고|먹이는\s*(?:중|데|엄마)|먹이며"
                            r"|먹이면서|먹여|물리|물려)|수유\s*(?:중(?!단)|하|해|할|한|기|부)|완모|유축)")
# Stopped or not breastfeeding, stated ("단유했어요", "수유는 안 해요"); "수유 중단해야 하나요?" is not a statement.
_NOT_BREASTFEEDING = re.compile(r"(단유\s*(?:했|해서|한|하고)|(?:모유|수유|젖)\s*(?:수유)?\s*(?:는|은|를|을|도)?\s*"
                                r"(?:안\s*(?:해|하|먹[이여]|줘|주)|못\s*(?:해|하|먹[이여])|하지\s*않|끊었|끊어서|끊은"
                                r"|끝났|끝냈|중단했|그만\s*(?:뒀|했|먹였)))")
_FORMULA_BEFORE = ("분유", "분유로", "젖병", "젖병으로")
_FORMULA_ONLY = re.compile(r"분유만")
_MALE = re.compile(r"(남자|남성|아들|남편|남아)")
_FEMALE = re.compile(r"(여자|여성|딸|아내|여아|임신|생리)")
_DURATION = re.compile(
    r"((?:\d+|한|두|세|네|며칠|몇|반)\s*(?:분|시간|일|주|주일|달|개월|년)\s*(?:전부터|째|됐|되었|동안|정도|전|넘게|이상)"
    r"|(?:하루|이틀|사흘|나흘|일주일|한\s*주|보름|한\s*달)\s*(?:전부터|째|됐|되었|동안|정도|넘게|이상|전)?"
    r"|어제부터|그제부터|그저께부터|오늘\s*(?:아침|새벽|오후|저녁)?부터|지난\s*주부터|아까부터|방금|갑자기)"
)
_SEVERE = re.compile(r"(너무\s*심|심하게|극심|참을\s*수\s*없|죽을\s*것\s*같|생애\s*최악|견딜\s*수\s*없|엄청)")
_TAKING = re.compile(r"(먹고\s*있|복용\s*중|복용하고|먹는\s*중|처방\s*받은|처방받은|먹고있|복용해요|먹어요)")
_HAS_CONDITION = re.compile(r"(있어요|있는데|있고|앓고|진단\s*받|진단받|환자|지병|병력)")
_ALLERGY = re.compile(r"([가-힣A-Za-z]+)\s*(?:에|약에)?\s*알레르기")


@dataclass
class Profile:
    age_years: int | None = None
    age_months: int | None = None
    is_child: bool | None = None
    sex: str | None = None  # "male" | "female"
    pregnant: bool | None = None
    pregnancy_weeks: int | None = None
    breastfeeding: bool | None = None
    duration: str | None = None
    severe: bool = False
    medications: list[str] = field(default_factory=list)  # drug ids
    conditions: list[str] = field(default_factory=list)  # chronic condition ids
    allergies: list[str] = field(default_factory=list)  # free text or drug ids

    def merge(self, update: dict) -> None:
        """Later turns refine earlier ones: scalars overwrite, lists accumulate."""
        for key, value in update.items():
            if value is None:
                continue
            current = getattr(self, key)
            if isinstance(current, list):
                setattr(self, key, list(dict.fromkeys([*current, *value])))
            elif key == "severe":
                self.severe = self.severe or bool(value)
            else:
                setattr(self, key, value)

    def age_in_months(self) -> int | None:
        return age_in_months(self.age_months, self.age_years)

    def populations(self) -> set[str]:
        """The KB/DUR population keys this person belongs to (infants, children, elderly, pregnancy, lactation)."""
        return populations(self.age_months, self.age_years, self.pregnant, self.breastfeeding)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, [], False)}


def _first_int(match: re.Match) -> int:
    return int(next(g for g in match.groups() if g))


def breastfeeding(text: str) -> bool | None:
    """True for "수유 중", "모유 수유", "젖 먹이는 중"…; False for "단유했어요", "수유 안 해요", "분유만";
    None when the text says neither ("분유 먹이는 중" says nothing about breast milk)."""
    if _NOT_BREASTFEEDING.search(text):
        return False
    for m in _BREASTFEEDING.finditer(text):
        before = re.sub(r"\s+", "", text[: m.start()])
        if m.group(0).startswith("수유") and before.endswith(_FORMULA_BEFORE):
            continue  # "분유 수유 중", "젖병 수유해요"
        return True
    return False if _FORMULA_ONLY.search(text) else None


def extract_profile(text: str, mentions=()) -> dict:
    """Profile fields stated in one message. ``mentions`` are linker mentions of the same text."""
    found: dict = {}
    if m := _AGE_DAYS.search(text):
        found["age_months"] = 0
        found["is_child"] = True
        del m
    elif m := _AGE_WEEKS_BABY.search(text):
        found["age_months"] = _first_int(m) // 4
        found["is_child"] = True
    elif m := _AGE_MONTHS.search(text):
        found["age_months"] = _first_int(m)
        found["is_child"] = True
    if m := _AGE_YEARS.search(text) or _AGE_YEARS_WORDS.search(text) or _AGE_DOL.search(text):
        word = m.group(1) or "한"  # a bare 돌 is the first birthday
        years = int(word) if word.isdigit() else _NUM_WORDS[word]
        if 0 < years < 120:
            found["age_years"] = years
            found["is_child"] = is_pediatric(years * 12)
            found["age_months"] = years * 12
    elif m := _AGE_DECADE.search(text):
        if m.group(0).strip() != m.group(1) + "0대" or re.search(r"\d0\s*대\s*(?:남|여)", text):
            found["age_years"] = int(m.group(1)) * 10 + 5
            found["is_child"] = False
    if "is_child" not in found and _CHILD.search(text):
        found["is_child"] = True
    if m := _PREGNANT_WEEKS.search(text):
        found["pregnant"] = True
        found["pregnancy_weeks"] = int(m.group(1))
    elif _NOT_PREGNANT.search(text):
        found["pregnant"] = False
    elif _PREGNANT.search(text):
        found["pregnant"] = True
    if (feeding := breastfeeding(text)) is not None:
        found["breastfeeding"] = feeding
    if _MALE.search(text):
        found["sex"] = "male"
    elif _FEMALE.search(text):
        found["sex"] = "female"
    if m := _DURATION.search(text):
        found["duration"] = re.sub(r"\s+", " ", m.group(0)).strip()
    if _SEVERE.search(text):
        found["severe"] = True
    drugs = [mn.id for mn in mentions if mn.type == "drug" and not mn.negated]
    if drugs and _TAKING.search(text):
        found["medications"] = drugs
    conditions = [mn.id for mn in mentions if mn.type == "disease" and not mn.negated]
    if conditions and _HAS_CONDITION.search(text):
        found["conditions"] = conditions
    if allergy := _ALLERGY.findall(text):
        found["allergies"] = allergy
    return found
