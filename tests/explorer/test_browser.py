"""The explorer in a real headless browser (Debian's chromium through /usr/bin/chromedriver, driven by
Selenium; nothing is downloaded) over real services: the trained test world's recommender, the
assignment service, Kafka and Redis. The page loads, a user is picked, both arms' recommendations
render with titles and scores, and a click on a film lands as an Interaction event on a real Kafka
topic. A screenshot is saved to artifacts/explorer/explorer.png."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from minirec.events import Interaction, decode
from minirec.infra.kafka import create_topics
from minirec.infra.process import free_port
from minirec.settings import get_settings
from services.explorer.screenshot import CHROMEDRIVER, CHROMIUM
from tests.assignment.conftest import start_service
from tests.explorer.conftest import start_explorer
from tests.serving.conftest import heaviest_user
from tests.simulator.conftest import consume_all

pytestmark = [pytest.mark.infra, pytest.mark.slow]



@pytest.fixture
def browser(tmp_path):
    if not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()):
        if os.environ.get("CI") == "true":  # CI installs them (make setup): a missing browser is a failure there
            pytest.fail(f"{CHROMIUM} or {CHROMEDRIVER} missing: `make setup` installs chromium + chromium-driver")
        pytest.skip("Debian's chromium + chromium-driver are not installed (`make setup` installs them as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1250",
                f"--user-data-dir={tmp_path / 'chromium'}"):
        opts.add_argument(arg)
    # an explicit driver path: Selenium Manager is not consulted, so it downloads nothing
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_pick_a_user_see_both_arms_and_click(world, recommender, kafka_broker, redis_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    topic = f"interactions-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_broker.bootstrap, [topic], partitions=3)
    asg = start_service(tmp_path / "asg", kafka_broker.bootstrap, redis_server.port, project=world.project)
    rhost, rport = recommender.url.removeprefix("http://").split(":")
    khost, kport = kafka_broker.bootstrap.split(":")
    env = {**world.env, "KAFKA_HOST": khost, "KAFKA_PORT": kport, "TOPIC_INTERACTIONS": topic,
           "RECOMMENDER_HOST": rhost, "RECOMMENDER_PORT": rport, "ASSIGNMENT_PORT": asg.url.rsplit(":", 1)[1],
           "DRIFT_METRICS_PORT": str(free_port()),  # no drift monitor: its panel must say so
           "EXPLORER_DATASET_DIR": str(world.data_dir), "ARTIFACTS_DIR": str(tmp_path / "artifacts"),
           "STREAM_LAKE_DIR": str(tmp_path / "lake")}
    exp = start_explorer(tmp_path / "explorer", env)
    uid = heaviest_user(world)
    try:
        wait = WebDriverWait(browser, 30)
        browser.get(exp.url + "/")
        assert browser.find_element(By.ID, "empty").is_displayed()  # no user yet: the picker only
        box = browser.find_element(By.ID, "user")
        box.send_keys(str(uid))
        browser.find_element(By.ID, "show").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#arm-control tr.rec")))

        for arm in ("control", "treatment"):
            rows = browser.find_elements(By.CSS_SELECTOR, f"#arm-{arm} tr.rec")
            assert len(rows) == 10, arm
            cells = [r.find_elements(By.TAG_NAME, "td") for r in rows]
            assert all(c[1].text.strip() for c in cells), arm  # every film has a title
            scores = [float(c[2].text) for c in cells]
            assert scores == sorted(scores, reverse=True), (arm, scores)  # ranked by score
        variant = browser.find_element(By.ID, "variant").text
        assert variant in ("control", "treatment")
        assert "assigned" in browser.find_element(By.ID, f"arm-{variant}").get_attribute("class")
        assert "ratings in the dataset" in browser.find_element(By.ID, "history").text
        assert "age" in browser.find_element(By.ID, "features").text  # the online row with its age column
        assert "not available" in browser.find_element(By.ID, "drift").text
        assert "make ab-report" in browser.find_element(By.ID, "readout").text
        assert "recommend_control" in browser.find_element(By.ID, "latency").text

        button = browser.find_elements(By.CSS_SELECTOR, f"#arm-{variant} button.item")[2]
        item = int(button.get_attribute("data-item"))
        request_id = button.get_attribute("data-request")
        button.click()
        status = browser.find_element(By.ID, "click-status")
        wait.until(lambda _d: status.get_attribute("data-event-id"))
        event_id = status.get_attribute("data-event-id")

        out = get_settings().artifacts_path / "explorer"
        out.mkdir(parents=True, exist_ok=True)
        shot = tmp_path / "explorer.png"
        assert browser.save_screenshot(str(shot))
        shutil.copy(shot, out / "explorer.png")
    finally:
        exp.stop()  # drains the queued click to Kafka (up to 3 s)
        asg.stop()
    events = [decode(Interaction, v) for v in consume_all(kafka_broker.bootstrap, topic, expected=1, timeout_s=30)]
    assert len(events) == 1, events
    ev = events[0]
    assert isinstance(ev, Interaction)
    assert (ev.event_id, ev.user_id, ev.item_id, ev.action, ev.position, ev.variant, ev.request_id) == \
        (event_id, uid, item, "click", 2, variant, request_id)
    assert (out / "explorer.png").stat().st_size > 20_000  # a rendered page, not a blank image
