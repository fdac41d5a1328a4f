"""Input guardrails: deterministic, Korean-first checks that run before retrieval, with no model call.

Order of precedence in a turn (kmed.agent.assistant): emergency red flags and self-harm first
(never refused, never downgraded), then prompt injection, harmful requests and out-of-scope.
English input gets the same checks through English patterns.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from kmed.data.pii import redact

MAX_INPUT_CHARS = 1000

_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u206f]")
_ADDRESS = re.compile(
    r"([가-힣]+(?:특별시|광역시|특별자치시|도|시))\s*[가-힣]+(?:시|군|구)\s*[가-힣0-9]+(?:로|길|동|읍|면)\s*\d+(?:-\d+)?(?:\s*\d+동)?(?:\s*\d+호)?"
)

_INJECTION = re.compile(
    r"(이전|앞의|위의|모든|기존)\s*(지시|명령|규칙|지침|프롬프트)(을|를|은|는)?\s*(다\s*)?(무시|잊어|잊고|취소)"
    r"|시스템\s*프롬프트|system\s*prompt|너의\s*(지시|규칙|설정|프롬프트)(을|를)?\s*(알려|보여|출력)"
    r"|ignore\s+(all\s+)?(previous|prior|above)\s+(instructions|rules)|developer\s*mode|jailbreak|탈옥"
    r"|지금부터\s*(너는|넌)\s*.{0,20}(제한|규칙)\s*(없|이\s*없)|DAN\b|역할극.{0,10}(제한|규칙).{0,5}없",
    re.IGNORECASE,
)

# Harmful requests: each entry is (category, pattern). They are refused with a safe redirect.
_HARMFUL = [
    ("lethal_dose", re.compile(r"(치사량|죽을\s*수\s*있는\s*(양|용량)|몇\s*(알|정|개|mg).{0,12}(죽|사망)|죽으려면.{0,10}(몇|얼마)"
                               r"|lethal\s+dose|how\s+many.{0,30}(kill|die|overdose))", re.IGNORECASE)),
    ("self_harm_method", re.compile(r"(자살|자해|목숨을\s*끊).{0,12}(방법|하는\s*법|어떻게|도구|약)|고통\s*없이\s*죽"
                                    r"|(how\s+to|ways?\s+to)\s+(kill\s+myself|commit\s+suicide|self[- ]harm)", re.IGNORECASE)),
    # Buying without a prescription is refused only for a controlled drug: "처방전 없이 살 수 있는
    # 감기약" is an ordinary over-the-counter question.
    ("controlled_drugs", re.compile(r"(몰래|불법).{0,20}(구하|구입|얻|살\s*수)"
                                    r"|(처방\s*(전|없이)|처방전\s*없이).{0,20}(졸피뎀|펜타닐|옥시코돈|프로포폴|마약|대마|필로폰|아더랄|애더럴"
                                    r"|디에타민|펜터민|수면제|신경안정제|식욕\s*억제제).{0,20}(구하|구입|사|얻|살\s*수)"
                                    r"|(졸피뎀|펜타닐|옥시코돈|프로포폴|마약|대마|필로폰|아더랄|애더럴|디에타민|펜터민).{0,20}(구하|구입|사는|파는|살\s*수|어디서)"
                                    r"|(buy|get|obtain).{0,30}without\s+(a\s+)?prescription", re.IGNORECASE)),
    ("prescription_fraud", re.compile(r"(처방전|진단서|소견서|의무\s*기록|진료\s*기록).{0,15}(위조|조작|만들|만드|가짜|허위|고치|고쳐|변조|바꾸|바꿔|늘리|수정)"
                                      r"|(fake|forge|falsify|alter|manipulate).{0,30}(prescription|medical\s+certificate|patient\s+records?|medical\s+records?)",
                                      re.IGNORECASE)),
    # A person word then a verb of harm. Feeding ("아이한테 시럽 먹여요") or poison as a noun ("독사", "독버섯")
    # is not harm: 먹이다/재우다 count only with 몰래, and 독 only as something put in or given.
    ("harm_others", re.compile(r"(남|다른\s*사람|상대|남편|아내|부모|아이|친구|동료|그\s*사람|누군가|걔|쟤|그\s*새끼|상사|선배|후배"
                               r"|남친|여친|애인|시어머니|장모|이웃|룸메이트)(을|를|에게|한테)?.{0,20}"
                               r"((몰래|모르게|들키지\s*않게).{0,15}(먹여|먹이|먹일|타서|타면|넣어|넣으|재우|잠들게)"
                               r"|독(을|약을?)?\s*(타|넣|먹이|먹여|먹일)|해치|죽이|기절시키|아프게\s*하|중독시키)"
                               r"|몰래.{0,10}(먹여|타서|넣어).{0,15}(싶|려고|방법|어떻게|할까|재우|기절)"
                               r"|(강간|데이트\s*강간|성범죄)\s*약|물뽕|GHB|약을?\s*타서.{0,10}(재우|기절|정신).{0,10}(싶|려고|방법|어떻게|할까|법)"
                               r"|(poison|drug|sedate|hurt|harm)\s+(someone|somebody|my\s+\w+|a\s+person|people|others)"
                               r"|make\s+(someone|somebody|people|a\s+person|him|her|them)\s+(sick|ill|pass\s+out)"
                               r"|date\s*rape", re.IGNORECASE)),
]
# Refused before red flags: their wording describes someone else, not the person's own state.
REFUSE_FIRST = {"harm_others", "prescription_fraud", "controlled_drugs"}
# The person is the one harmed ("누가 제 음료에 약을 타서", "친구가 나를 해치려고 해요"): a victim's
# report, never a request to harm, so the red flags and the answer apply.
_VICTIM = re.compile(r"(나를|저를|날\s|절\s|나한테|저한테|나에게|저에게|누가\s*(제|내|저|나)"
                     r"|(제|내)\s*(음료|술|잔|음식|물|커피|밥)|someone\s+(drugged|poisoned|spiked)\s+(me|my))",
                     re.IGNORECASE)

_MEDICAL_HINT = re.compile(
    r"(아프|아파|통증|기침|증상|병원|진료|질환|질병|검사|수술|치료|먹어도|복용|임신|생리|혈압|혈당|당뇨|콜레스테롤|염증|감염|"
    r"알레르기|두드러기|가려|부었|부어|어지|토하|토했|설사|변비|상처|다쳤|골절|삐었|피곤|불면|우울|불안|스트레스|"
    r"가슴|머리|허리|무릎|어깨|이빨|치아|잇몸|피부|체중|다이어트|금연|예방접종|백신|건강|의사|응급|약국|처방|"
    r"삼켰|삼킨|삼키|물렸|쏘였|데었|화상|쓰러|기절|발작|경련|출혈|피가|소변|오줌|대변|똥|배꼽|아기|애기|신생아|임산부|태동|"
    r"토했|구토|메스|의식|마비|저려|저림|붓|혹이|멍이|상처|가렵|두드러|콧물|가래|목이|배가|눈이|귀가|숨이|"
    r"중독|가스|과다\s*복용|먹었|몸이|컨디션|통증|쑤시|결리|시려|빙글|어질|자살|자해|예방|정신|마음이|위험\s*신호|"
    r"부작용|영양제|파스|연고|아퍼|아픔|항생제|해열제|진통제|소염제|"
    # Single-syllable body words count only as whole words ("코가", not "비트코인").
    r"(?<![가-힣])(?:코|눈|귀|배|목|피|열|살|약|숨|잠|술|병|멍)(?:이|가|을|를|은|는|에|도|만|좀|\s|$)|"
    r"pain|fever|cough|doctor|medicine|drug|symptom|sick|hospital|pregnan|health|dose|pill|tablet|vaccin|"
    r"allerg|protein|vitamin|diet|nicotine|antihistamine|antibiotic|blood|injur|infect|malaria|disease|"
    r"hurt|ache|dizz|nause|vomit|rash|bleed|breath|chest|stomach|headache)",
    re.IGNORECASE,
)

_HYPOTHETICAL = re.compile(r"(만약|만일|혹시\s*나중에|~?라면\s*어떻|하면\s*어떡|하면\s*어떻게|경우에는?\s*어떻|예를\s*들어|if\s+i\s+ever)",
                           re.IGNORECASE)
_INFO_QUESTION = re.compile(
    r"(이|가|은|는)?\s*(뭐|무엇|뭔가|뭘까|어떤\s*(거|것|병|질환)|정의|기준|원인|증상|종류|치료법|예방법|차이)"
    r"\s*(이|가|은|는|을|를)?\s*(예요|에요|인가요|일까요|있나요|있어요|알려|뭐예요|뭔가요|\?|궁금)"
    r"|(에\s*대해|에\s*대하여|란|이란|이라는\s*게)\s*(알려|설명|뭐)|what\s+is|what\s+are|tell\s+me\s+about",
    re.IGNORECASE,
)
_FIRST_PERSON = re.compile(r"(저|제가|나|내가|우리|아이가|아기가|애가|엄마가|아빠가|남편이|아내가|지금|요즘|어제|오늘|방금|계속|자꾸)")


@dataclass
class CleanInput:
    text: str  # normalised and PII-redacted: the only form that is stored, logged or echoed
    truncated: bool
    pii_kinds: list[str]


def clean_input(raw: str | None) -> CleanInput:
    text = unicodedata.normalize("NFC", raw or "")
    text = _CONTROL.sub(" ", text)
    text = re.sub(r"[ \t\r\f\v]+", " ", text).strip()
    # Redact before cutting to length: a number cut at the limit would no longer be recognised.
    text, kinds = redact(text)
    text, n_addresses = _ADDRESS.subn("[주소]", text)
    if n_addresses:
        kinds = [*kinds, "address"]
    truncated = len(text) > MAX_INPUT_CHARS
    if truncated:
        text = text[:MAX_INPUT_CHARS]
    return CleanInput(text, truncated, list(dict.fromkeys(kinds)))


def is_prompt_injection(text: str) -> bool:
    return bool(_INJECTION.search(text))


# Violence, threats or drugging suffered from another person ("남편이 때려서", "누가 제 음료에 약을 타서",
# "스토킹을 당하고 있어요"). "맞았어요" alone is left out: it is also how people say they had a shot.
_SUFFERED = re.compile(r"((제|내|저의|나의)\s*(음료|술잔|술|잔|음식|물|커피|밥)에\s*(\S+\s*)?(탔|타서|탄\s|넣었|넣어서)"
                       r"|얻어\s*맞|두들겨\s*맞|(폭행|폭력|협박|위협|스토킹|성추행|성폭행|강간|학대)(을|를)?\s*(당|받|피해)"
                       r"|데이트\s*폭력|가정\s*폭력)")
_AGENT_HITS_ME = re.compile(r"(남편|아내|남친|여친|남자\s*친구|여자\s*친구|애인|아빠|엄마|아버지|어머니|시어머니|형|오빠|누나|언니|"
                            r"선배|상사|친구|누가|누군가)(이|가|한테|에게)?\s*(저를|나를|절|날)?\s*(때려|때렸|때리|해치려|죽이려|죽인다고|죽이겠다고)")


def is_victim(text: str) -> bool:
    """The person is being threatened, hurt or drugged by someone else (never a request to harm)."""
    if _SUFFERED.search(text) or _AGENT_HITS_ME.search(text):
        return True
    return any(category == "harm_others" and pattern.search(text) and _VICTIM.search(text) for category, pattern in _HARMFUL)


def harmful_category(text: str) -> str | None:
    for category, pattern in _HARMFUL:
        if pattern.search(text):
            if category == "harm_others" and _VICTIM.search(text):
                continue  # the person is the one being harmed
            return category
    return None


_SELF_HARM = re.compile(
    r"(죽고\s*싶|죽어\s*버리고|자살|자해|목숨을\s*끊|살고\s*싶지\s*않|사라지고\s*싶|극단적\s*선택|손목을\s*긋|"
    r"kill\s+myself|suicid|end\s+my\s+life|self[- ]harm|(don'?t|do\s+not)\s+want\s+to\s+(live|be\s+alive)|want\s+to\s+die)",
    re.IGNORECASE,
)


_GREETING = re.compile(r"^\s*(안녕|안녕하세요|안녕하십니까|반가워요|반갑습니다|hi|hello|hey)\s*[!.?~]*\s*$", re.IGNORECASE)


def is_greeting(text: str) -> bool:
    return bool(_GREETING.match(text))


def is_self_harm(text: str) -> bool:
    """A safety net independent of the KB rules: any self-harm expression gets the caring reply."""
    return bool(_SELF_HARM.search(text))


def looks_medical(text: str) -> bool:
    """Words of the body, symptoms, care or medicines (Korean or English)."""
    return bool(_MEDICAL_HINT.search(text))


def is_hypothetical(text: str) -> bool:
    return bool(_HYPOTHETICAL.search(text))


_COMPARISON = re.compile(r"(중에서?|랑|하고|와|과)\s*.{0,15}(뭐가|어느\s*게|어떤\s*게|어떤\s*것이)\s*.{0,10}(\?|요|까)")
_PAST_REFERENCE = re.compile(r"(예전에|옛날에|작년에|몇\s*년\s*전|전에는|었었|았었|했었)")
_QUESTION_END = re.compile(r"(\?|나요|까요|가요|돼요\?|인가요|을까|ㄹ까)\s*$")
_REPORT_CUE = re.compile(r"(시려요|시리고|계속\s*나요|계속\s*생겨|아파요|아프고|아파서|아프다|쑤셔|쑤시|부었|부어|가려|따가|쓰라|쓰려|돌아요|나와요|심해요|심하고|못\s*갈|힘들어요|접질|삐었|까져|다쳤)")


def is_past_reference_question(text: str) -> bool:
    """A question that mentions a past episode ("예전에 공황발작 왔을 때 …, 약은 얼마나 먹어요?")."""
    return bool(_PAST_REFERENCE.search(text)) and bool(_QUESTION_END.search(text.strip()))


# Korean questions: a question mark, an interrogative ending, or an interrogative word that statements
# seldom use (몇, 어디, 무슨 and 어떤 also describe: "몇 번 토했어요", so they do not count).
_QUESTION_FORM = re.compile(
    r"\?|(나요|까요|가요|는지요|니|냐|까)\s*[.~!ㅠㅜ]*\s*$"
    r"|(뭐|뭘|무엇|왜|어떻게|언제|얼마나|어째서|how|what|why|when|which|can\s+i)",
    re.IGNORECASE,
)


def is_question(text: str) -> bool:
    """The message asks something ("…인가요?", "로페라미드는 어떻게 듣는 약이에요", "먹어도 돼?")."""
    return bool(_QUESTION_FORM.search(text.strip()))


def sounds_like_report(text: str) -> bool:
    """Words people use to describe their own current trouble ("아파요", "부었어요", "접질렸어요")."""
    return bool(_REPORT_CUE.search(text))


def is_information_question(text: str) -> bool:
    """A question about a topic ("뇌졸중 증상이 뭐예요?") rather than a report of one's own symptoms."""
    if _COMPARISON.search(text):
        return True
    return bool(_INFO_QUESTION.search(text)) and not _FIRST_PERSON.search(text)


def is_english(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    latin = sum(1 for c in letters if c.isascii())
    return latin / len(letters) > 0.7
