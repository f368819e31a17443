"""The SMTP kit the portal's sign-in tests read codes from: a real server on loopback."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import pytest
from smtp_kit import SmtpServer, run_smtp_server


def _mail(to: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "portal@example.test"
    message["To"] = to
    message["Subject"] = "Your sign-in code"
    message.set_content(body)
    return message


def test_collects_mail_and_extracts_the_code(smtp_server: SmtpServer) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(_mail("other@example.test", "Your code is 111111."))
        client.send_message(_mail("Dev@Example.test", "Your code is 042917. It expires in 10 min."))
    assert smtp_server.wait_for_code("dev@example.test") == "042917"
    mail = smtp_server.wait_for_mail("other@example.test")
    assert mail.mail_from == "portal@example.test"
    assert mail.message["Subject"] == "Your sign-in code"
    with pytest.raises(AssertionError, match="no mail #2"):
        smtp_server.wait_for_mail("dev@example.test", count=2, timeout=0.2)


def test_requires_the_configured_credentials() -> None:
    with run_smtp_server(credentials=("mailer", "s3cret")) as server:
        assert server.url == f"smtp://mailer:s3cret@127.0.0.1:{server.port}"
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("mailer", "wrong")
            with pytest.raises(smtplib.SMTPSenderRefused):
                client.send_message(_mail("dev@example.test", "123456"))
        with smtplib.SMTP(server.host, server.port, timeout=10) as client:
            client.login("mailer", "s3cret")
            client.send_message(_mail("dev@example.test", "Code: 123456"))
        assert server.wait_for_code("dev@example.test") == "123456"
        assert server.logins == ["mailer"]
