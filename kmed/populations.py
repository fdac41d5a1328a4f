"""Who a drug warning or a department is for: age groups, pregnancy and breastfeeding, defined once.

    populations(age_months=18, age_years=None, pregnant=None, breastfeeding=None)  # {"infants", "children"}
    populations(None, 70, None, None)                                              # {"elderly"}
    is_pediatric(14 * 12)                                                          # True: 소아청소년과 first

The keys are those of ``kmed.data.kb_schema.POPULATIONS`` that describe a person (not a disease):
a KB or DUR edge ``drug → <key>`` (``contraindicated_in``) applies to everyone this module puts in
that group. Every age threshold in kmed comes from here; where a second one is needed (the
pediatric patient, the DUR age-band reader) it is named, with its reason.
"""

from __future__ import annotations

PREGNANCY = "pregnancy"
LACTATION = "lactation"
INFANTS = "infants"
CHILDREN = "children"
ELDERLY = "elderly"
PERSON_POPULATIONS = (PREGNANCY, LACTATION, INFANTS, CHILDREN, ELDERLY)

# Infant: younger than 24 months. ICH E11's "infants and toddlers" end at 23 months, and the KB's
# infant edges say "만 2세 미만" / "24개월 미만" (DUR's 영아 rows too).
INFANT_MONTHS = 24
# Child: younger than 12 years (infants included, as the KB's children edges apply to them too).
# ICH E11's "children" are 2 to 11 years; the KB writes "12세 미만 어린이에게는 …".
CHILD_YEARS = 12
# Adolescent: 12 to under 19. ICH E11 ends adolescence at 16–18 by region; Korean law counts
# anyone under 만 19세 as a minor (청소년).
ADOLESCENT_YEARS = 19
# A pediatric patient: "N살" under 15 is read as a child, and 소아청소년과 is suggested first.
# Korean pediatric emergency triage (Pediatric KTAS) applies under 15 years, and the KB's aspirin
# edge (Reye's syndrome) is written for "15세 미만".
PEDIATRIC_YEARS = 15
# Elderly: 65 and over. DUR 노인주의 is for patients 65 and over, as are the KB's notes ("65세 이상은 …").
ELDERLY_YEARS = 65
# Reading a DUR 특정연령대금기 row "N세 이상/초과": a band that starts at 60 or later is about older
# people (an ``elderly`` edge), although kmed's elderly start at 65; a lower start is read as a
# children's band. Kept from the importer's first version, so a "60세 이상" row is not misread.
DUR_ELDERLY_BAND_YEARS = 60


def age_in_months(age_months: int | None, age_years: int | None) -> int | None:
    """The age in months: stated months win (a baby's "생후 2개월"), else years × 12."""
    if age_months is not None:
        return age_months
    return age_years * 12 if age_years is not None else None


def is_infant(months: int | None) -> bool:
    return months is not None and months < INFANT_MONTHS


def is_child(months: int | None) -> bool:
    """Younger than 12 years, infants included: the age the KB's and DUR's ``children`` edges mean."""
    return months is not None and months < CHILD_YEARS * 12


def is_adolescent(months: int | None) -> bool:
    return months is not None and CHILD_YEARS * 12 <= months < ADOLESCENT_YEARS * 12


def is_pediatric(months: int | None) -> bool:
    """A pediatric patient (under 15): 소아청소년과 first, and "N살" read as a child."""
    return months is not None and months < PEDIATRIC_YEARS * 12


def is_elderly(years: int | None) -> bool:
    return years is not None and years >= ELDERLY_YEARS


def populations(age_months: int | None, age_years: int | None, pregnant: bool | None,
                breastfeeding: bool | None) -> set[str]:
    """The population keys a person belongs to. Unknown (None) never places anyone in a group."""
    months = age_in_months(age_months, age_years)
    years = age_years if age_years is not None else (months // 12 if months is not None else None)
    found = set()
    if pregnant:
        found.add(PREGNANCY)
    if breastfeeding:
        found.add(LACTATION)
    if is_infant(months):
        found.add(INFANTS)
    if is_child(months):
        found.add(CHILDREN)
    if is_elderly(years):
        found.add(ELDERLY)
    return found


def age_band_population(bound_months: float, upward: bool) -> str:
    """The population of a DUR age band: ``upward`` for "N 이상/초과", else "N 미만/이하".

    A band below a bound of at most 24 months lies within infancy (``infants``); one starting at
    ``DUR_ELDERLY_BAND_YEARS`` or later is ``elderly``; any other band is ``children``.
    """
    if upward:
        return ELDERLY if bound_months >= DUR_ELDERLY_BAND_YEARS * 12 else CHILDREN
    return INFANTS if bound_months <= INFANT_MONTHS else CHILDREN
