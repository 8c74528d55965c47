"""detect_intent() and extract_order_reference(): what a customer's message asks for."""

from __future__ import annotations

import shutil
import tomllib
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.conversation import i18n
from bot.conversation.intents import (
    LOCALES_DIR,
    WHOLE_MESSAGE,
    Intent,
    IntentKind,
    default_book,
    detect_intent,
    extract_order_reference,
    load_keyword_book,
)

OUT, IN, HELP, AGENT, LANG = (
    IntentKind.OPT_OUT,
    IntentKind.OPT_IN,
    IntentKind.HELP,
    IntentKind.AGENT,
    IntentKind.LANGUAGE,
)

# Per language, messages as customers send them. Each is that language's own word, so the
# language is told without a preference; shared words are covered by the precedence tests.
UNDERSTOOD = {
    "en": {
        OUT: [
            "STOP",
            "stop.",
            "Stop!!!",
            "stop 🙏",
            "UnSubscribe",
            "STOP ALL",
            "stopall",
            "Opt-Out",
            "END",
            "quit",
            "revoke",
            "Stop please",
            "please stop",
            "Stop promotions",
            "don't message me",
        ],
        IN: ["START", "Unstop", "yes!", "Subscribe 👍"],
        HELP: ["HELP", "help?", "Info", "menu"],
        AGENT: ["AGENT", "human please", "Talk to a person", "Customer care"],
        LANG: ["English", "in English please"],
    },
    "hi": {
        OUT: [
            "बंद करो",
            "बंद करो!!",
            "बंद करें 🙏",
            "रोको",
            "मत भेजो",
            "कृपया बंद करो",
            "band karo",
            "BAND KARO",
            "Band kro.",
            "bandkaro",
            "message mat bhejo",
            "alert nahi chahiye",
        ],
        IN: ["शुरू करो", "हाँ", "shuru karo", "Haan!"],
        HELP: ["मदद", "सहायता?", "madad chahiye"],
        AGENT: ["इंसान", "किसी इंसान से बात करनी है", "kisi se baat karao"],
        LANG: ["हिंदी", "हिन्दी में", "Hindi", "hindi mein please"],
    },
    "bn": {
        OUT: ["বন্ধ করুন", "বন্ধ করো!", "থামুন 🙏", "Bondho koro"],
        IN: ["শুরু করুন", "হ্যাঁ"],
        HELP: ["সাহায্য", "তথ্য?"],
        AGENT: ["মানুষ", "গ্রাহক সেবা"],
        LANG: ["বাংলা", "Bengali", "Bangla"],
    },
    "ta": {
        OUT: ["நிறுத்து", "நிறுத்துங்கள்!", "நிறுத்தவும் 🙏", "Niruthu"],
        IN: ["தொடங்கு", "ஆம்"],
        HELP: ["உதவி", "உதவி தேவை?"],
        AGENT: ["மனிதர்", "வாடிக்கையாளர் சேவை"],
        LANG: ["தமிழ்", "Tamil", "தமிழில்"],
    },
    "te": {
        OUT: ["ఆపు", "ఆపండి!!", "Aapandi", "మెసేజ్‌లు ఆపండి 🙏"],
        IN: ["ప్రారంభించండి", "అవును"],
        HELP: ["సహాయం", "సమాచారం?"],
        AGENT: ["మనిషి", "కస్టమర్ కేర్"],
        LANG: ["తెలుగు", "Telugu", "తెలుగులో"],
    },
    "mr": {
        OUT: ["थांबवा", "बंद करा!", "Band kara", "संदेश पाठवू नका 🙏"],
        IN: ["सुरू करा", "होय"],
        HELP: ["मदत", "माहिती?"],
        AGENT: ["माणूस", "एजंट"],
        LANG: ["मराठी", "Marathi", "मराठीत"],
    },
    "gu": {
        OUT: ["બંધ કરો", "અટકાવો!", "રદ કરો 🙏"],
        IN: ["શરૂ કરો", "હા"],
        HELP: ["મદદ", "માહિતી?"],
        AGENT: ["માણસ", "ગ્રાહક સેવા"],
        LANG: ["ગુજરાતી", "Gujarati"],
    },
    "kn": {
        OUT: ["ನಿಲ್ಲಿಸಿ", "ನಿಲ್ಲಿಸು!", "Nillisi", "ರದ್ದು 🙏"],
        IN: ["ಪ್ರಾರಂಭಿಸಿ", "ಹೌದು"],
        HELP: ["ಸಹಾಯ", "ಮಾಹಿತಿ?"],
        AGENT: ["ಮನುಷ್ಯ", "ಗ್ರಾಹಕ ಸೇವೆ"],
        LANG: ["ಕನ್ನಡ", "Kannada", "ಕನ್ನಡದಲ್ಲಿ"],
    },
    "ml": {
        OUT: ["നിർത്തുക", "നിര്\u200dത്തുക", "Nirthuka!", "റദ്ദാക്കുക 🙏"],
        IN: ["തുടങ്ങുക", "അതെ"],
        HELP: ["സഹായം", "സഹായം വേണം?"],
        AGENT: ["മനുഷ്യൻ", "കസ്റ്റമർ കെയർ"],
        LANG: ["മലയാളം", "Malayalam"],
    },
    "es": {
        OUT: [
            "BAJA",
            "Baja.",
            "alto!",
            "no más",
            "NO MAS",
            "basta 🙏",
            "darse de baja",
        ],
        IN: ["ALTA", "sí", "Empezar"],
        HELP: ["Ayuda", "información"],
        AGENT: ["Hablar con una persona", "Asesor"],
        LANG: ["Español", "espanol", "en español por favor"],
    },
    "pt": {
        OUT: ["SAIR", "Parar promoções", "parar promocoes", "descadastrar", "pare!"],
        IN: ["SIM", "começar"],
        HELP: ["Ajuda", "informações"],
        AGENT: ["atendente", "falar com atendente"],
        LANG: ["Português", "portugues"],
    },
    "ar": {
        OUT: ["توقف", "إلغاء الاشتراك", "الغاء الاشتراك", "إيقاف!", "قف 🙏"],
        IN: ["ابدأ", "نعم"],
        HELP: ["مساعدة", "مساعده؟"],
        AGENT: ["موظف", "خدمة العملاء"],
        LANG: ["العربية", "عربي", "Arabic"],
    },
    "id": {
        OUT: ["BERHENTI", "berhenti langganan", "hentikan!", "stop kirim pesan 🙏"],
        IN: ["MULAI", "ya"],
        HELP: ["bantuan", "informasi"],
        AGENT: ["manusia", "bicara dengan agen"],
        LANG: ["Bahasa Indonesia", "Indonesian", "indonesia"],
    },
    "fr": {
        OUT: ["ARRÊT", "arret", "Arrête !", "désabonner", "STOP PUB"],
        IN: ["Commencer", "OUI"],
        HELP: ["Aide", "AIDE ?"],
        AGENT: ["conseiller", "parler à un humain"],
        LANG: ["Français", "francais", "en français svp"],
    },
    "de": {
        OUT: ["STOPP", "Abmelden", "abbestellen!", "Kündigen", "keine Nachrichten mehr 🙏"],
        IN: ["Starten", "JA", "anmelden"],
        HELP: ["Hilfe", "Hilfe?"],
        AGENT: ["Mitarbeiter", "Kundenservice"],
        LANG: ["Deutsch", "German", "auf Deutsch bitte"],
    },
}

# (language, message, order reference)
ORDER_QUESTIONS = [
    ("en", "Where is my order #1042?", "1042"),
    ("en", "where's my order", None),
    ("en", "ORDER STATUS 🙏", None),
    ("en", "order 1042", "1042"),
    ("en", "Track order no. 1042", "1042"),
    ("hi", "ऑर्डर १०४२ कहाँ है", "1042"),
    ("hi", "मेरा ऑर्डर कब आएगा?", None),
    ("hi", "mera order kahan hai", None),
    ("hi", "Mera order #SHOP1042 kab aayega??", "SHOP1042"),
    ("bn", "আমার অর্ডার কোথায়?", None),
    ("bn", "অর্ডার ১০৪২ কবে আসবে", "1042"),
    ("ta", "என் ஆர்டர் எங்கே?", None),
    ("ta", "ஆர்டர் ௧௦௪௨ எப்போது வரும்", "1042"),
    ("te", "నా ఆర్డర్ ఎక్కడ?", None),
    ("te", "ఆర్డర్ ౧౦౪౨ ఎప్పుడు వస్తుంది", "1042"),
    ("mr", "माझी ऑर्डर कुठे आहे?", None),
    ("mr", "ऑर्डर क्रमांक १०४२ कधी येईल", "1042"),
    ("gu", "મારો ઓર્ડર ક્યાં છે?", None),
    ("gu", "ઓર્ડર ૧૦૪૨ ક્યારે આવશે", "1042"),
    ("kn", "ನನ್ನ ಆರ್ಡರ್ ಎಲ್ಲಿದೆ?", None),
    ("kn", "ಆರ್ಡರ್ ೧೦೪೨ ಯಾವಾಗ ಬರುತ್ತೆ", "1042"),
    ("ml", "എന്റെ ഓർഡർ എവിടെ?", None),
    ("ml", "ഓർഡർ ൧൦൪൨ എപ്പോൾ വരും", "1042"),
    ("es", "¿Dónde está mi pedido?", None),
    ("es", "pedido #1042", "1042"),
    ("es", "DONDE ESTA MI PEDIDO 1042", "1042"),
    ("pt", "Onde está meu pedido?", None),
    ("pt", "Status do pedido 1042", "1042"),
    ("ar", "أين طلبي؟", None),
    ("ar", "حالة الطلب ١٠٤٢", "1042"),
    ("id", "Di mana pesanan saya?", None),
    ("id", "status pesanan #1042 kak", "1042"),
    ("fr", "Où est ma commande ?", None),
    ("fr", "commande n° 1042", "1042"),
    ("de", "Wo ist meine Bestellung?", None),
    ("de", "Bestellnummer 1042", "1042"),
]

NOT_OPT_OUT = [
    "stopwatch",
    "restart my order",
    "please don't stop",
    "order band karo",
    "मेरा ऑर्डर रद्द करो",
    "टीवी बंद करो",
    "I'll stop by the shop tomorrow",
    "cancel my order",
    "quit smoking",
    "non-stop delivery",
    "band baaja baraat",
    "¿puedo cancelar mi pedido?",
    "annuler ma commande",
    "Bestellung stornieren",
    "berhenti di depan rumah",
    "stop 1042",
]

REPLY_TO = {
    OUT: (i18n.OPTED_OUT, {"shop": "Kirana"}),
    IN: (i18n.OPTED_IN, {"shop": "Kirana"}),
    HELP: (i18n.HELP, {"shop": "Kirana"}),
    AGENT: (i18n.HANDED_OFF, {"shop": "Kirana"}),
    IntentKind.ORDER_STATUS: (i18n.ORDER_NOT_FOUND, {"reference": "1042"}),
}
SCRIPTS = {
    "hi": "DEVANAGARI", "mr": "DEVANAGARI", "bn": "BENGALI", "ta": "TAMIL", "te": "TELUGU",
    "gu": "GUJARATI", "kn": "KANNADA", "ml": "MALAYALAM", "ar": "ARABIC",
}  # fmt: skip


def cases(kinds=WHOLE_MESSAGE):
    return [
        pytest.param(language, kind, text, id=f"{language}-{kind}-{text}")
        for language, table in UNDERSTOOD.items()
        for kind, texts in table.items()
        if kind in kinds
        for text in texts
    ]


@pytest.fixture(scope="module")
def book():
    return default_book()


def test_every_required_language_has_keywords_and_tests():
    required = {"en", "hi", "bn", "ta", "te", "mr", "gu", "kn", "ml"}
    required |= {"es", "pt", "ar", "id", "fr", "de"}
    assert required <= set(default_book().languages)
    assert set(UNDERSTOOD) == set(default_book().languages)


@pytest.mark.parametrize(("language", "kind", "text"), cases())
def test_keywords_are_understood_in_their_language(book, language, kind, text):
    intent = detect_intent(text, book)
    assert intent.kind == kind
    assert intent.language == language
    if kind == LANG:
        assert intent.target_language == language


@pytest.mark.parametrize(("language", "kind", "text"), cases((OUT, IN, HELP, AGENT)))
def test_the_reply_to_a_keyword_is_in_the_keywords_language(book, language, kind, text):
    intent = detect_intent(text, book)
    msgid, params = REPLY_TO[intent.kind]
    assert_written_in(language, i18n.translate(intent.language, msgid, **params), msgid, params)


@pytest.mark.parametrize(("language", "kind", "text"), cases((LANG,)))
def test_switching_language_answers_in_the_new_language(book, language, kind, text):
    target = detect_intent(text, book).target_language
    name = i18n.LANGUAGE_NAMES[target]
    reply = i18n.translate(target, i18n.LANGUAGE_CHANGED, language=name)
    assert_written_in(language, reply, i18n.LANGUAGE_CHANGED, {"language": name})


@pytest.mark.parametrize(("language", "text", "reference"), ORDER_QUESTIONS)
def test_order_status_questions_are_understood_in_their_language(book, language, text, reference):
    intent = detect_intent(text, book)
    assert intent == Intent(IntentKind.ORDER_STATUS, language, order_reference=reference)
    msgid, params = REPLY_TO[intent.kind]
    assert_written_in(language, i18n.translate(intent.language, msgid, **params), msgid, params)


@pytest.mark.parametrize(
    ("text", "reference"),
    [("1042", "1042"), ("#1042", "1042"), ("  #1042 ", "1042"), ("1042?", "1042"),
     ("१०४२", "1042"), ("١٠٤٢", "1042"), ("#SHOP1042", "SHOP1042"), ("SHOP1042", "SHOP1042"),
     ("#1042 please", "1042")],
)  # fmt: skip
def test_a_message_that_is_only_an_order_reference_asks_for_its_status(book, text, reference):
    assert detect_intent(text, book) == Intent(
        IntentKind.ORDER_STATUS, None, order_reference=reference
    )


@pytest.mark.parametrize("text", NOT_OPT_OUT)
def test_a_keyword_inside_a_sentence_or_word_opts_nobody_out(book, text):
    assert detect_intent(text, book).kind != OUT


@pytest.mark.parametrize(
    "text", ["hello", "thanks for the saree!", "👍", "", "   ", "my number is 98123 45678"]
)
def test_ordinary_messages_are_unknown(book, text):
    assert detect_intent(text, book) == Intent(IntentKind.UNKNOWN, None)


def test_asking_to_be_called_is_a_request_for_a_person_not_an_order_number(book):
    intent = detect_intent("call me on 98123 45678", book)
    assert (intent.kind, intent.order_reference) == (IntentKind.AGENT, None)


@pytest.mark.parametrize(
    ("text", "preferred", "language"),
    [
        ("stop", None, "en"),
        ("STOP", "fr", "fr"),
        ("Stop!", "de-DE", "de"),
        ("stop", "hi", "en"),  # Hindi lists no "stop": English, not a guess
        ("parar", None, "es"),
        ("parar", "pt_BR", "pt"),
        ("बंद", None, "hi"),
        ("बंद", "mr", "mr"),
        ("info", None, "en"),
        ("info", "es", "es"),
    ],
)
def test_a_keyword_shared_by_languages_reports_the_preferred_then_english_then_alphabetical(
    book, text, preferred, language
):
    assert detect_intent(text, book, preferred_language=preferred).language == language


@pytest.mark.parametrize(
    ("payload", "language"),
    [("Stop promotions", "en"), ("Parar promoções", "pt"), ("UNSUBSCRIBE", "en"),
     ("STOP_PROMOTIONS", "en")],
)  # fmt: skip
def test_a_stop_promotions_or_unsubscribe_button_opts_out(book, payload, language):
    assert detect_intent(payload, book, button_payload=payload) == Intent(OUT, language)
    assert detect_intent("", book, button_payload=payload) == Intent(OUT, language)


def test_a_button_payload_wins_over_its_visible_label(book):
    intent = detect_intent("Track order", book, button_payload="STATUS:1042")
    assert intent == Intent(IntentKind.ORDER_STATUS, "en", order_reference="1042")
    assert detect_intent("Not interested", book, button_payload="STOP").kind == OUT


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("#1042", "1042"),
        ("order 1042", "1042"),
        ("Order No. 1042", "1042"),
        ("order#1042", "1042"),
        ("#SHOP1042", "SHOP1042"),
        ("#shop-1042", "SHOP1042"),
        ("order SHOP1042", "SHOP1042"),
        ("१०४२", "1042"),
        ("ऑर्डर नंबर ১০৪২", "1042"),
        ("I paid 1499 for order 1042", "1042"),
        ("order 1042, my number is +91 98123 45678", "1042"),
        ("order 1042 9812345678", "1042"),
        ("#2024", "2024"),
        ("where is 1042", "1042"),
        ("call me on 9812345678", None),
        ("+91 98123 45678", None),
        ("098123-45678", None),
        ("ordered on 12/05/2024", None),
        ("ordered on 2024-05-12", None),
        ("ordered on 12 May 2024", None),
        ("ordered in March 2024", None),
        ("12 मार्च 2024", None),
        ("paid ₹1,499", None),
        ("paid Rs. 1499", None),
        ("paid rs 1499", None),
        ("it cost $250", None),
        ("order 12", None),
        ("my iphone15 broke", None),
        ("hello", None),
    ],
)
def test_order_references_are_read_from_what_the_customer_wrote(text, reference):
    assert extract_order_reference(text) == reference


phone_numbers = st.from_regex(r"(\+91[ -]?|0)?[6-9]\d{4}[ -]?\d{5}", fullmatch=True)
no_digits = st.text(st.characters(categories=["L", "Zs", "P"], exclude_characters="#"))


@given(no_digits, phone_numbers, no_digits)
def test_a_phone_number_is_never_taken_for_an_order_reference(before, phone, after):
    assert extract_order_reference(f"{before} {phone} {after}") is None


@given(st.text())
def test_an_order_reference_is_short_and_plain(text):
    reference = extract_order_reference(text)
    if reference is not None:
        assert reference.isascii() and reference.isalnum() and reference.upper() == reference
        assert 3 <= sum(c.isdigit() for c in reference) <= 9


@given(st.text(), st.one_of(st.none(), st.text()), st.sampled_from([None, "hi", "en-IN", "zz"]))
def test_detect_intent_never_raises(text, payload, preferred):
    intent = detect_intent(
        text, default_book(), button_payload=payload, preferred_language=preferred
    )
    assert isinstance(intent.kind, IntentKind)


# --- the keyword files themselves -------------------------------------------------------


def keyword_files():
    for path in sorted(LOCALES_DIR.glob("*/keywords.toml")):
        yield path.parent.name, tomllib.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("language", "kind", "phrase"),
    [
        pytest.param(language, kind, phrase, id=f"{language}-{kind}-{phrase}")
        for language, data in keyword_files()
        for kind in WHOLE_MESSAGE
        for phrase in data.get(kind, [])
    ],
)
def test_every_listed_keyword_means_what_its_section_says(book, language, kind, phrase):
    intent = detect_intent(phrase, book, preferred_language=language)
    assert (intent.kind, intent.language) == (kind, language)


@pytest.mark.parametrize(
    ("language", "phrase"),
    [
        pytest.param(language, phrase, id=f"{language}-{phrase}")
        for language, data in keyword_files()
        for phrase in data.get("order_status", [])
    ],
)
def test_every_listed_order_status_phrase_asks_for_order_status(book, language, phrase):
    intent = detect_intent(phrase, book, preferred_language=language)
    assert (intent.kind, intent.language) == (IntentKind.ORDER_STATUS, language)


def write_keywords(root: Path, language: str, text: str) -> Path:
    path = root / language / "keywords.toml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_adding_a_language_is_adding_a_file(tmp_path):
    shutil.copytree(LOCALES_DIR / "en", tmp_path / "en")
    write_keywords(tmp_path, "it", 'opt_out = ["smettere", "basta così"]\nfillers = ["grazie"]\n')
    book = load_keyword_book(tmp_path)
    assert detect_intent("Basta così, grazie!", book) == Intent(OUT, "it")
    assert detect_intent("italiano", book) == Intent(LANG, "it", target_language="it")


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ('opt_outs = ["stop"]\n', "unknown section(s) opt_outs"),
        ('[opt_out]\nwords = ["stop"]\n', "must be a list of strings"),
        ('opt_out = "stop"\n', "must be a list of strings"),
        ('opt_out = ["🙏"]\n', "empty once normalised"),
        ('opt_out = ["stop"]\nopt_in = ["STOP!"]\n', "in both opt_out and opt_in"),
        ("opt_out = [\n", "keywords.toml"),
    ],
)
def test_a_broken_keyword_file_is_refused_by_name(tmp_path, content, complaint):
    path = write_keywords(tmp_path, "xx", content)
    with pytest.raises(ValueError, match=str(path).replace("\\", "\\\\")) as raised:
        load_keyword_book(tmp_path)
    assert complaint in str(raised.value)


def test_an_empty_locales_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="keywords.toml"):
        load_keyword_book(tmp_path)


def assert_written_in(language: str, reply: str, msgid: str, params: dict) -> None:
    """`reply` is the catalog's `language` text, not the English fallback."""
    english = msgid % params
    for value in params.values():
        assert value in reply
    if language == "en":
        assert reply == english
        return
    assert reply != english
    if language in SCRIPTS:
        letters = [c for c in reply if unicodedata.category(c).startswith("L")]
        assert any(unicodedata.name(c, "").startswith(SCRIPTS[language]) for c in letters)


@pytest.mark.parametrize("text", ["cancel", "CANCEL!", "cancelar", "annuler 🙏", "रद्द", "batal"])
def test_a_bare_cancel_is_asked_about_not_acted_on(book, text):
    """On an order's thread "cancel" more often means the order than the messages: the
    customer is asked, and the tap decides (README "When customers write back")."""
    assert detect_intent(text, book).kind == IntentKind.OPT_OUT_UNCLEAR
