"""Membership by consent and who sees an e-mail (R49), over HTTP on SQLite and
PostgreSQL: an invitation's life, nothing in a person's name before they accept, e-mails
per viewer, and a sign-up that does not tell whether an address is registered."""

from __future__ import annotations

from typing import Any

from connects.web.auth import user_id_by_email
from tests.e2e.conftest import Api, error


def _invite(api: Api, inviter: str, agency: str, name: str, role: str = "member") -> Any:
    body = {"user_id": api.ids[name], "role": role}
    return api.call("POST", f"/v1/accounts/{agency}/members", inviter, body)


def _member_ids(api: Api, agency: str, who: str = "olga") -> list[str]:
    items = api.ok("GET", f"/v1/accounts/{agency}/members", who)["items"]
    return [m["user_id"] for m in items]


def test_an_invitation_makes_no_member_until_accepted(api: Api) -> None:
    # R49
    agency = api.agency("olga", ada="admin")
    uid = api.person("ivy")
    r = _invite(api, "ada", agency, "ivy", "manager")
    assert r.status_code == 201, r.text
    invitation = r.json()
    assert (invitation["user_id"], invitation["role"], invitation["status"]) == (
        uid,
        "manager",
        "invited",
    )
    # Not a member yet: not listed, sees nothing, cannot be assigned a proposal.
    assert uid not in _member_ids(api, agency)
    assert api.call("GET", f"/v1/accounts/{agency}", "ivy").status_code == 404
    assert api.ok("GET", "/v1/me", "ivy")["memberships"] == []
    job = api.job(2)
    r = api.propose("olga", job, agency, freelancer="ivy")  # agency-plus: on behalf
    assert r.status_code == 409 and error(r)["code"] == "not_a_member"
    assert api.propose("ivy", api.job(2), agency).status_code == 404
    # A second invitation while one is open is refused.
    r = _invite(api, "olga", agency, "ivy")
    assert r.status_code == 409 and error(r)["code"] == "already_invited"
    # The invited person sees it with the agency's name, and only they may answer it.
    mine = api.ok("GET", "/v1/me/invitations", "ivy")
    assert [(i["id"], i["account_id"], i["account_name"]) for i in mine["items"]] == [
        (invitation["id"], agency, "olga co")
    ]
    assert api.ok("GET", "/v1/me/invitations", "ada")["items"] == []
    for other in ("olga", "ada"):
        for answer in ("accept", "decline"):
            r = api.call("POST", f"/v1/invitations/{invitation['id']}/{answer}", other)
            assert r.status_code == 404 and error(r)["code"] == "not_found"
    accepted = api.ok("POST", f"/v1/invitations/{invitation['id']}/accept", "ivy")
    assert accepted["status"] == "accepted" and accepted["answered_at"] is not None
    # Now a member with the invited role, and proposals may be assigned to them.
    assert uid in _member_ids(api, agency)
    assert api.ok("GET", f"/v1/accounts/{agency}", "ivy")["role"] == "manager"
    assert api.propose("olga", api.job(2), agency, freelancer="ivy").status_code == 201
    assert api.ok("GET", "/v1/me/invitations", "ivy")["items"] == []
    # Answered once: a second answer is refused.
    for answer in ("accept", "decline"):
        r = api.call("POST", f"/v1/invitations/{invitation['id']}/{answer}", "ivy")
        assert r.status_code == 409 and error(r)["code"] == "invitation_closed"
    r = _invite(api, "olga", agency, "ivy")
    assert r.status_code == 409 and error(r)["code"] == "already_member"


def test_a_declined_invitation_leaves_the_person_out(api: Api) -> None:
    # R49
    agency = api.agency("olga")
    uid = api.person("dan")
    invitation = _invite(api, "olga", agency, "dan").json()
    declined = api.ok("POST", f"/v1/invitations/{invitation['id']}/decline", "dan")
    assert declined["status"] == "declined"
    assert uid not in _member_ids(api, agency)
    assert api.call("GET", f"/v1/accounts/{agency}", "dan").status_code == 404
    r = api.call("POST", f"/v1/invitations/{invitation['id']}/accept", "dan")
    assert r.status_code == 409 and error(r)["code"] == "invitation_closed"
    # They may be invited again, and only members manage invitations.
    assert _invite(api, "olga", agency, "dan").status_code == 201
    api.person("eve")
    assert _invite(api, "dan", agency, "eve").status_code == 404
    r = api.call("POST", "/v1/invitations/inv_nope/accept", "dan")
    assert r.status_code == 404


def test_email_shown_only_to_the_person_and_owner_and_admins(api: Api) -> None:
    # R49
    agency = api.agency("olga", ada="admin", max="manager", mia="member")
    emails = {
        name: api.ok("GET", "/v1/me", name)["email"] for name in ("olga", "ada", "max", "mia")
    }
    assert all(emails.values())
    for viewer in ("olga", "ada", "max", "mia"):
        items = api.ok("GET", f"/v1/accounts/{agency}/members", viewer)["items"]
        seen = {m["user_id"]: m["email"] for m in items}
        for name, email in emails.items():
            shown = viewer in ("olga", "ada") or viewer == name
            assert seen[api.ids[name]] == (email if shown else None), (viewer, name)
    one = api.ok(
        "PATCH", f"/v1/accounts/{agency}/members/{api.ids['mia']}", "olga", {"role": "member"}
    )
    assert one["email"] == emails["mia"]
    # A job's client is public (a job post is), their e-mail never is.
    job = api.ok("GET", f"/v1/jobs/{api.job(2)}", "mia")
    assert "email" not in job and job["client_id"] == api.ids["client"]


def test_sign_up_does_not_tell_whether_an_address_is_registered(api: Api) -> None:
    # R49: the same answer for a new and a registered address
    first = api.ok("POST", "/v1/users", None, {"name": "Rita", "email": "rita@x.io"})
    again = api.call("POST", "/v1/users", None, {"name": "Rita", "email": "RITA@x.io"})
    fresh = api.call("POST", "/v1/users", None, {"name": "Rita", "email": "rita2@x.io"})
    assert again.status_code == fresh.status_code == 201
    assert set(again.json()) == set(fresh.json()) == {"id", "name", "email", "token"}
    assert again.json()["email"] == "rita@x.io" and again.json()["id"] != first["id"]
    # The second holder is a new, separate person: the first's token and data are theirs.
    second = again.json()["token"]
    me = api.client.get("/v1/me", headers={"Authorization": f"Bearer {second}"}).json()
    assert me["id"] == again.json()["id"] and me["accounts"] == [] and me["email"] == "rita@x.io"
    mine = api.client.get("/v1/me", headers={"Authorization": f"Bearer {first['token']}"}).json()
    assert mine["id"] == first["id"]
    # Sign-in links keep going to the address's first holder.
    assert user_id_by_email(api.ctx, "Rita@x.io") == first["id"]
