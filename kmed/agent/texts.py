"""Every fixed sentence the agent says, in polite 해요체, kept in one place for review."""

DISCLAIMER = "※ 이 답변은 일반적인 건강 정보이며, 의사의 진료를 대신하지 않아요."
GREETING = "안녕하세요! 건강 상담 도우미 kmed예요. 불편한 증상이나 궁금한 질환·약에 대해 편하게 물어봐 주세요. 응급 상황이면 바로 119에 전화하세요."
EMPTY_INPUT = "궁금한 점이나 불편한 증상을 적어 주세요. 예: \"어제부터 열이 나고 목이 아파요\""
TRUNCATED = "메시지가 너무 길어서 앞부분 {limit}자만 읽었어요."
PII_REDACTED = "개인정보(주민등록번호·전화번호·이메일·주소)는 가리고 처리했어요. 상담에는 필요하지 않아요."
INTERNAL_ERROR = "죄송해요, 답변을 만드는 중에 문제가 생겼어요. 같은 내용을 다시 한 번 적어 주시겠어요? 급한 증상이면 바로 119에 전화하세요."

EMERGENCY_BANNER = "🚨 지금 바로 119에 전화하거나 가까운 응급실로 가세요."
URGENT_BANNER = "⚠ 오늘 안에(24시간 이내) 진료를 받으세요. 증상이 심해지면 바로 119에 전화하세요."

SELF_HARM = (
    "많이 힘드시죠. 이야기해 주셔서 고마워요. 지금 마음이 너무 힘들다면 혼자 견디지 말고 바로 도움을 받으세요. "
    "자살예방상담전화 109(24시간), 정신건강 위기상담전화 1577-0199에서 언제든 이야기를 들어 줘요. "
    "지금 위험한 상황이라면 119에 전화하세요."
)
SELF_HARM_REASON = "자해·자살 위험 표현"

INJECTION = "그 요청은 도와드릴 수 없어요. 저는 건강과 의료에 관한 질문에 근거와 함께 답하는 상담 도우미예요. 궁금한 증상이나 질환을 물어봐 주세요."
OUT_OF_SCOPE = "저는 건강과 의료 상담만 도와드릴 수 있어요. 증상, 질환, 약, 검사에 대해 물어봐 주세요."
HARMFUL = {
    "lethal_dose": "약의 치명적인 양은 알려 드릴 수 없어요. 혹시 스스로를 해칠 생각이 드신다면 자살예방상담전화 109나 1577-0199에 바로 연락해 주세요. 약을 너무 많이 먹었다면 지금 119에 전화하세요.",
    "self_harm_method": SELF_HARM,
    "controlled_drugs": "처방 없이 전문의약품이나 마약류를 구하는 방법은 알려 드릴 수 없어요. 필요한 약이 있다면 진료를 받고 처방을 받으세요. 불면이나 통증 때문이라면 어떤 증상인지 알려 주시면 도움이 되는 정보를 드릴게요.",
    "prescription_fraud": "처방전이나 진단서를 위조하거나 고치는 일은 도와드릴 수 없어요. 필요한 서류는 진료받은 병원에서 정식으로 발급받을 수 있어요.",
    "harm_others": "다른 사람에게 해를 끼칠 수 있는 요청은 도와드릴 수 없어요. 누군가 위험에 처해 있다면 112나 119에 연락하세요.",
    "harmful_general": "그 요청은 누군가에게 해가 될 수 있어 도와드릴 수 없어요. 누군가 위험에 처해 있다면 112나 119에 연락하세요.",
}
# For someone who is being threatened, hurt or drugged by another person: safety first.
VICTIM = ("많이 놀라셨겠어요. 지금 위험하다면 바로 112에 신고하세요. 다쳤거나, 정신이 흐리거나, 누가 음식이나 음료에 "
          "무언가를 넣은 뒤 몸이 이상하다면 119에 연락하거나 응급실로 가세요. 가정폭력·성폭력·스토킹 피해는 "
          "여성긴급전화 1366(24시간)에서도 도움을 받을 수 있어요.")
VICTIM_REASON = "다른 사람에게 위협이나 폭력을 당함"
# Added under an emergency reply when the same message also asked for something harmful.
REFUSE_TOO = {
    "lethal_dose": "※ 약의 치명적인 양은 알려 드릴 수 없어요. 마음이 힘드시면 109나 1577-0199에 연락하세요.",
    "controlled_drugs": "※ 처방 없이 약을 구하는 방법은 알려 드릴 수 없어요.",
    "prescription_fraud": "※ 처방전이나 진단서를 위조하는 일은 도와드릴 수 없어요.",
    "harm_others": "※ 다른 사람을 해칠 수 있는 방법은 알려 드릴 수 없어요.",
}
HARMFUL_REASON = {
    "lethal_dose": "치명적 용량 요청",
    "self_harm_method": "자해 방법 요청",
    "controlled_drugs": "처방 없는 전문의약품·마약류 요청",
    "prescription_fraud": "처방전·진단서 위조 요청",
    "harm_others": "타인 위해 요청",
    "harmful_general": "위해 가능성이 있는 요청",
}

ASK_DURATION = "언제부터 그런 증상이 있었나요? (예: 오늘 아침부터, 사흘째) 함께 나타나는 다른 증상이 있으면 같이 알려 주세요."
ASK_CHILD_AGE = "아이가 몇 살(또는 생후 몇 개월)인가요? 나이에 따라 열이 날 때 해야 할 일이 달라요."
NEED_MORE_INFO = "판단에 필요한 정보를 묻는 중"

REPORT_INTRO = "말씀하신 증상({symptoms})과 관련된 정보를 정리했어요. 아래는 가능성일 뿐 진단이 아니에요."
REPORT_REASON = "응급 신호는 없지만 증상이 있어 진료를 권해요"
INFO_REASON = "정보 질문"
MYTH_INTRO = "흔히 알려진 말과 근거가 다를 수 있어, 근거 자료에 나온 내용을 정리했어요."
DRUG_SAFETY_HEADING = "약 안전 확인 (말씀하신 상황 기준)"
DEPARTMENT_LINE = "{departments}에서 진료를 받아 보세요."
DEFAULT_DEPARTMENT = "가정의학과 또는 내과"
NOTHING_FOUND = "죄송해요, 이 질문에 답할 근거를 지식베이스에서 찾지 못했어요. 추측해서 답하지 않을게요. {departments}에서 진료를 받아 보세요.\n" + DISCLAIMER
NOTHING_FOUND_REASON = "근거 부족"

PEDIATRICS = "소아청소년과"
PSYCHIATRY = "정신건강의학과"
DEPARTMENTS_HEADING = "■ 진료과"
OBSTETRICS = "산부인과"
# Escalations the KG or the classifier raise (kmed.agent.triage): what to do, and why when no rule is named.
CONDITION_ACTION = {"emergency": "지금 바로 119에 전화하거나 가까운 응급실로 가세요.",
                    "urgent": "오늘 안에(24시간 이내) 진료를 받고, 심해지면 119에 전화하세요."}
LEARNED_NAME = {"emergency": "응급일 수 있는 증상", "urgent": "빨리 진료가 필요할 수 있는 증상"}
LEARNED_REASON = {"emergency": "말씀하신 증상은 바로 응급 진료가 필요한 상황과 비슷해요.",
                  "urgent": "말씀하신 증상은 빨리 진료를 받아야 하는 상황과 비슷해요."}
LEARNED_ACTION = {"emergency": "증상이 시작된 시각을 기억해 두고, 119 상담원의 안내를 따르세요.",
                  "urgent": "증상이 심해지거나 새 증상이 생기면 바로 119에 전화하세요."}
STILL_EMERGENCY = "🚨 앞에서 말씀하신 내용({reason})은 응급 신호예요. 지금 괜찮아 보여도 바로 119에 전화하거나 응급실로 가세요."
STILL_URGENT = "⚠ 앞에서 말씀하신 내용({reason}) 때문에 오늘 안에 진료를 받으셔야 해요."
UNDERSTOOD = "말씀하신 증상은 {symptoms}(으)로 이해했어요."
