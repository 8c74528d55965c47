"""`make say TEXT="..."`: post a customer's WhatsApp message to the local Dakiya as Meta's
webhook would (signed with the local META_APP_SECRET), to try the conversation:

    make say TEXT="mujhe message mat bhejo"
    make say TEXT="too many messages"
    make say TAP=OPTOUT:YES            # tap a quick-reply button (the stop question's)
    make say TEXT="Hey" FROM=919812345678

The answer is in the sandbox outbox: `.venv/bin/flask --app wsgi sandbox-outbox`.
The body is Meta's text (or interactive `button_reply`) message webhook as its
reference documents it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_post import post_signed  # noqa: E402


def webhook(sender: str, text: str | None, tap: str | None) -> dict:
    message: dict = {"from": sender, "id": f"wamid.LOCAL{uuid.uuid4().hex[:16]}"}
    message["timestamp"] = str(int(time.time()))
    if tap:
        title = tap.split(":", 1)[-1].title()
        message["type"] = "interactive"
        reply = {"id": tap, "title": title}
        message["interactive"] = {"type": "button_reply", "button_reply": reply}
    else:
        message["type"] = "text"
        message["text"] = {"body": text}
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
        "contacts": [{"profile": {"name": "Asha"}, "wa_id": sender}],
        "messages": [message],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("text", nargs="?", help="what the customer writes")
    parser.add_argument("--tap", help="a button id to tap instead, e.g. OPTOUT:YES")
    parser.add_argument("--from", dest="sender", default="919812345678", help="their number")
    args = parser.parse_args()
    if not args.text and not args.tap:
        parser.error("say something (TEXT) or tap a button (--tap)")
    body = json.dumps(webhook(args.sender.lstrip("+"), args.text, args.tap)).encode()
    post_signed("/webhooks/whatsapp/meta", body, "X-Hub-Signature-256", "META_APP_SECRET")


if __name__ == "__main__":
    main()
