"""Template edits are overrides of one event each: the map file still rules every other
event (and its later edits count), an override can be deleted, and the API says where
each mapping comes from. The migration splits the old whole-map copy per event."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tomllib

import pytest

from bot.core.config import DEFAULT_NOTIFICATIONS_FILE
from bot.core.models import (
    AuditLog,
    EventKind,
    RuntimeSetting,
    TemplateOverride,
    db,
    migrate_database,
)
from bot.extensions import services
from tests.conftest import ADMIN
from tests.factories import queued_message

EDIT = {"template": "shipped_v2", "languages": ["en"], "body": ["customer_name", "order_number"]}


@pytest.fixture
def map_file(tmp_path):
    path = tmp_path / "notifications.toml"
    shutil.copy(DEFAULT_NOTIFICATIONS_FILE, path)
    return path


@pytest.fixture
def settings(settings, map_file):
    return dataclasses.replace(settings, notifications_file=str(map_file))


def edit_file(map_file, old: str, new: str) -> None:
    text = map_file.read_text()
    assert old in text
    map_file.write_text(text.replace(old, new))
    services().refresh()  # as any process does within REFRESH_SECONDS


def mappings(client) -> dict[str, dict]:
    response = client.get("/admin/api/templates", headers=ADMIN)
    assert response.status_code == 200
    return {item["event"]: item for item in response.json["items"]}


def test_an_edit_overrides_its_event_and_the_file_still_rules_the_others(client, map_file):
    assert client.put("/admin/api/templates/shipped", json=EDIT, headers=ADMIN).status_code == 200
    edit_file(map_file, 'template = "order_placed"', 'template = "order_placed_v9"')
    shown = mappings(client)
    assert (shown["shipped"]["template"], shown["shipped"]["source"]) == ("shipped_v2", "override")
    assert (shown["placed"]["template"], shown["placed"]["source"]) == ("order_placed_v9", "file")
    assert {item["source"] for kind, item in shown.items() if kind != "shipped"} == {"file"}
    placed = queued_message(event_id="p", kind=EventKind.PLACED)
    shipped = queued_message(event_id="s")
    assert (placed.template_name, shipped.template_name) == ("order_placed_v9", "shipped_v2")


def test_deleting_an_override_sends_the_files_mapping_again(client, map_file):
    client.put("/admin/api/templates/shipped", json=EDIT, headers=ADMIN)
    deleted = client.delete("/admin/api/templates/shipped", headers=ADMIN)
    assert deleted.status_code == 200, deleted.json
    shipped = {item["event"]: item for item in deleted.json["items"]}["shipped"]
    assert (shipped["template"], shipped["source"]) == ("order_shipped", "file")
    assert queued_message(event_id="a", order_id="1").template_name == "order_shipped"
    edit_file(map_file, 'template = "order_shipped"', 'template = "order_shipped_v3"')
    assert queued_message(event_id="b", order_id="2").template_name == "order_shipped_v3"
    [reset] = AuditLog.select().where(AuditLog.action == "reset_template")
    assert (reset.subject, reset.details["before"]["template"]) == ("shipped", "shipped_v2")
    again = client.delete("/admin/api/templates/shipped", headers=ADMIN)
    assert (again.status_code, again.json["error"]["code"]) == (404, "not_found")
    assert "follows the map file" in again.json["error"]["message"]


def test_a_second_edit_replaces_the_override_and_is_audited_with_the_first(client):
    client.put("/admin/api/templates/shipped", json=EDIT, headers=ADMIN)
    second = {**EDIT, "template": "shipped_v3"}
    client.put("/admin/api/templates/shipped", json=second, headers=ADMIN)
    assert TemplateOverride.select().count() == 1
    edits = AuditLog.select().where(AuditLog.action == "edit_template").order_by(AuditLog.id)
    assert [(a.details["before"] or {}).get("template") for a in edits] == [None, "shipped_v2"]
    assert queued_message().template_name == "shipped_v3"


def test_deleting_needs_the_admin_role(client):
    from tests.conftest import VIEWER

    client.put("/admin/api/templates/shipped", json=EDIT, headers=ADMIN)
    assert client.delete("/admin/api/templates/shipped", headers=VIEWER).status_code == 403
    assert client.delete("/admin/api/templates/teleported", headers=ADMIN).status_code == 404


def test_the_migration_turns_the_whole_map_copy_into_overrides_of_the_edited_events(app):
    """An install whose first edit (before 0014) froze the whole map: only the edited
    event stays overridden, the others follow the file again."""
    with open(DEFAULT_NOTIFICATIONS_FILE, "rb") as fh:
        frozen = tomllib.load(fh)
    edited = {**EDIT, "category": "utility", "header": [], "buttons": [], "enabled": True}
    frozen["events"]["shipped"] = edited
    db.execute_sql('DROP TABLE "template_override"')
    db.execute_sql("DELETE FROM schema_migration WHERE name = '0014_template_overrides'")
    RuntimeSetting.create(key="notifications", value=frozen, updated_by="admin")
    try:
        assert migrate_database() == ["0014_template_overrides"]
    finally:
        if not TemplateOverride.table_exists():  # leave the schema whole for other tests
            TemplateOverride.create_table()
    rows = {row.event_kind: row.mapping for row in TemplateOverride.select()}
    assert rows == {"shipped": json.loads(json.dumps(edited))}
    assert not RuntimeSetting.select().where(RuntimeSetting.key == "notifications").exists()
    services().refresh()
    assert queued_message().template_name == "shipped_v2"


def test_a_map_file_broken_while_running_leaves_the_last_good_map_in_force(client, map_file):
    assert queued_message(event_id="a", order_id="1").template_name == "order_shipped"
    map_file.write_text("[events.shipped\n")  # a half-saved edit
    services().refresh()
    assert queued_message(event_id="b", order_id="2").template_name == "order_shipped"
