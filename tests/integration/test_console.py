"""The web console end to end in a real browser (Debian's headless Chromium driven by Selenium through
chromedriver) against the real stack: upload the shared sample through the page, watch the job finish,
open the transcript, and check what a user sees — two speakers, the emotion plot, audio that plays
from S3 and follows the transcript, exports that download. Screenshots go to artifacts/."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import ARTIFACTS, ROOT

pytestmark = pytest.mark.integration

SAMPLE = ROOT / "examples" / "sample.wav"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WebDriver, Path]]:
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and chromedriver, "Debian's chromium and chromium-driver are installed by infra/bootstrap.sh"
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1100",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver, downloads
    finally:
        driver.quit()


def _shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"console-{name}.png"))


@pytest.fixture(scope="module")
def console_key(settings) -> str:
    """A tenant of its own, so nothing another test submitted is deduplicated into this one."""
    from hark.apikeys import create_key
    from hark.db import session_scope

    with session_scope(settings.database_url) as s:
        return create_key(s, "console")


def test_upload_follow_and_read_a_transcript(stack, console_key, browser) -> None:
    """The sample is over the test deployment's direct-upload threshold, so the page sends it
    straight to S3 through presigned part URLs (the bucket's CORS rules allow the page's origin)."""
    driver, downloads = browser
    api_key = console_key
    # The console replaces the job table's rows on every poll, so an element found a moment ago can
    # be gone when it is read: the waits look again instead of failing.
    wait = WebDriverWait(driver, 150, poll_frequency=0.3, ignored_exceptions=(StaleElementReferenceException,))
    driver.get(f"{stack['url']}/")
    assert driver.current_url.endswith("/console")
    driver.find_element(By.ID, "api-key").send_keys(api_key)
    driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
    wait.until(lambda d: d.find_element(By.ID, "key-state").text == "key set")

    driver.find_element(By.ID, "file-input").send_keys(str(SAMPLE))
    row = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr[data-job]"))[0]
    assert driver.find_element(By.CSS_SELECTOR, "#uploads li").get_attribute("data-path") == "direct"
    assert "uploaded (direct)" in driver.find_element(By.CSS_SELECTOR, "#uploads li").text
    job_id = row.get_attribute("data-job")
    _shot(driver, "1-uploaded")

    def job_row(d: WebDriver) -> tuple[str, str]:
        row = d.find_element(By.CSS_SELECTOR, f'tr[data-job="{job_id}"]')
        return row.get_attribute("data-status"), row.text

    status, text = wait.until(lambda d: (found := job_row(d))[0] in ("done", "failed") and found)
    assert status == "done", text
    assert "sample.wav" in text and "100 %" in text

    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, f'tr[data-job="{job_id}"]').click() or True)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#utterances li")) > 0)
    speakers = driver.find_elements(By.CSS_SELECTOR, "#speakers .speaker")
    assert [s.get_attribute("data-speaker") for s in speakers] == ["SPEAKER_00", "SPEAKER_01"]
    text = driver.find_element(By.ID, "utterances").text.lower()
    assert "hello" in text

    # The emotion plot: one 100 % bar per speaker, its pieces labelled with known emotions.
    bars = driver.find_elements(By.CSS_SELECTOR, "#emotion-plot rect[data-speaker]")
    assert bars
    shares: dict[str, float] = {}
    for bar in bars:
        assert bar.get_attribute("data-emotion") in {
            "neutral",
            "happy",
            "sad",
            "angry",
            "fearful",
            "disgusted",
            "surprised",
        }
        speaker = bar.get_attribute("data-speaker")
        shares[speaker] = shares.get(speaker, 0.0) + float(bar.get_attribute("data-share"))
    assert set(shares) == {"SPEAKER_00", "SPEAKER_01"}
    assert all(abs(v - 1.0) < 0.01 for v in shares.values()), shares
    assert driver.find_elements(By.CSS_SELECTOR, "#emotion-timeline rect")
    assert "prosody+text" in driver.find_element(By.ID, "emotion-source").text
    # The language of each utterance and of the recording (detected: job option language "auto").
    assert driver.find_element(By.ID, "languages").text == "Languages: en"
    assert {b.text for b in driver.find_elements(By.CSS_SELECTOR, "#utterances .lang")} == {"en"}
    # Arousal over time: a point per utterance that has one, in its speaker's lane of the plot.
    doc = requests.get(
        f"{stack['url']}/v1/jobs/{job_id}/transcript",
        params={"format": "json"},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    ).json()
    with_arousal = [u for u in doc["utterances"] if u["arousal"] is not None]
    dots = driver.find_elements(By.CSS_SELECTOR, "#arousal-plot circle[data-arousal]")
    assert len(dots) == len(with_arousal)
    assert sorted(float(d.get_attribute("data-arousal")) for d in dots) == sorted(u["arousal"] for u in with_arousal)
    # The sample's 30 s make two segments, too few for a speaker baseline: the plot says so.
    if not with_arousal:
        assert "No arousal" in driver.find_element(By.ID, "arousal-note").text
    # The plot itself, drawn by the page's own code from a meeting with arousal: one line per
    # speaker, a point per utterance at its arousal, heated ones ringed.
    meeting = {
        "duration_s": 60,
        "speakers": [{"label": "SPEAKER_00"}, {"label": "SPEAKER_01"}],
        "utterances": [
            {
                "speaker": f"SPEAKER_0{i % 2}",
                "start": 5.0 * i,
                "end": 5.0 * i + 4,
                "text": "words",
                "arousal": z,
                "heated": z is not None and z >= 1.5,
            }
            for i, z in enumerate([0.1, -0.4, 0.3, 2.4, -1.2, 0.0, 3.1, None])
        ],
    }
    driver.execute_script("renderArousal(arguments[0], speakerColor(arguments[0]))", meeting)
    assert len(driver.find_elements(By.CSS_SELECTOR, "#arousal-plot polyline[data-speaker]")) == 2
    dots = driver.find_elements(By.CSS_SELECTOR, "#arousal-plot circle[data-arousal]")
    assert sorted(float(d.get_attribute("data-arousal")) for d in dots) == [-1.2, -0.4, 0.0, 0.1, 0.3, 2.4, 3.1]
    heated = [float(d.get_attribute("data-arousal")) for d in dots if d.get_attribute("data-heated") == "true"]
    assert sorted(heated) == [2.4, 3.1]
    heights = {float(d.get_attribute("data-arousal")): float(d.get_attribute("cy")) for d in dots}
    assert heights[3.1] < heights[0.0] < heights[-1.2]  # higher arousal is drawn higher
    assert "heated" in driver.find_element(By.ID, "arousal-note").text
    driver.execute_script("document.getElementById('arousal-plot').scrollIntoView()")
    _shot(driver, "arousal")

    # Audio comes straight from S3 through a presigned URL and loads in the browser.
    wait.until(lambda d: d.execute_script("return document.getElementById('player').readyState") >= 1)
    duration = driver.execute_script("return document.getElementById('player').duration")
    assert 29.5 < duration < 30.5

    # Clicking an utterance seeks the audio there, and playback highlights that utterance.
    last = driver.find_elements(By.CSS_SELECTOR, "#utterances li")[-1]
    start = float(last.get_attribute("data-start"))
    last.click()
    wait.until(lambda d: abs(d.execute_script("return document.getElementById('player').currentTime") - start) < 1.5)
    wait.until(
        lambda d: "current" in (d.find_elements(By.CSS_SELECTOR, "#utterances li")[-1].get_attribute("class") or "")
    )
    _shot(driver, "2-transcript")

    # Exports download with the key (fetched by the page, handed over as a file).
    driver.find_element(By.CSS_SELECTOR, '#exports button[data-format="srt"]').click()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (downloads / "sample.srt").exists():
        time.sleep(0.2)
    srt = (downloads / "sample.srt").read_text()
    assert srt.startswith("1\n") and "-->" in srt


def test_console_without_a_valid_key_shows_the_reason(stack, browser) -> None:
    driver, _ = browser
    driver.get(f"{stack['url']}/console")
    driver.execute_script("localStorage.clear()")
    driver.refresh()
    field = driver.find_element(By.ID, "api-key")
    field.clear()
    field.send_keys("hark_not-a-real-key")
    driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
    toast = WebDriverWait(driver, 10).until(
        lambda d: d.find_element(By.ID, "toast").is_displayed() and d.find_element(By.ID, "toast")
    )
    assert "unknown or revoked" in toast.text
