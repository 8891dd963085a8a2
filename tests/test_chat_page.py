"""The chat page at "/" in a real browser (Debian's headless Chromium through Selenium): upload the bundled image,
ask the bundled question, and read the shipped model's streamed answer; audio and video files go as input_audio and
video_url parts. CI installs chromium and chromium-driver."""

import base64
import shutil
import threading

import pytest
import torch

from conftest import REPO_ROOT
from serve import NextGPTServer

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and chromium-driver")


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1000,800", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_the_chat_page_answers_about_an_uploaded_image(default_folder, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from transformers import AutoModel, AutoProcessor

    model = AutoModel.from_pretrained(default_folder, trust_remote_code=True, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(default_folder, trust_remote_code=True)
    server = NextGPTServer(("127.0.0.1", 0), model, processor, "nextgpt-default", fast=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{server.server_port}/")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda driver: driver.find_element(By.ID, "model").text == "nextgpt-default")
        browser.find_element(By.ID, "file").send_keys(str(REPO_ROOT / "examples" / "red_triangle.png"))
        wait.until(lambda driver: driver.find_element(By.ID, "preview").is_displayed())
        browser.find_element(By.ID, "question").send_keys("What shape is in the image?")
        browser.find_element(By.ID, "send").click()
        answer = wait.until(lambda driver: next(
            (turn for turn in driver.find_elements(By.CSS_SELECTOR, ".turn.assistant") if turn.text), None))
        wait.until(lambda driver: driver.find_element(By.ID, "send").is_enabled())  # the stream has ended
        browser.save_screenshot(str(tmp_path / "chat_page.png"))
        print(f"screenshot: {tmp_path / 'chat_page.png'}")
        assert "triangle" in answer.text.lower()
        assert browser.find_element(By.CSS_SELECTOR, ".turn.user img").get_attribute("src").startswith("data:image")
        # Drag and drop: a file dropped on the drop zone becomes the next image.
        with open(REPO_ROOT / "examples" / "red_circle.png", "rb") as handle:
            png = base64.b64encode(handle.read()).decode()
        browser.execute_script(
            "const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));"
            "const transfer = new DataTransfer();"
            "transfer.items.add(new File([bytes], 'red_circle.png', {type: 'image/png'}));"
            "document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: transfer}));", png)
        wait.until(lambda driver: driver.find_element(By.ID, "preview").is_displayed())
        assert browser.find_element(By.ID, "preview").get_attribute("src").startswith("data:image/png;base64,")
        # Audio goes as OpenAI's input_audio part: this model has no audio branch, so the server's 400 shows, naming
        # what the model takes.
        import numpy as np
        import soundfile

        soundfile.write(tmp_path / "tone.wav", 0.3 * np.sin(np.arange(32000) / 8), 16000)
        browser.find_element(By.ID, "reset").click()
        browser.find_element(By.ID, "file").send_keys(str(tmp_path / "tone.wav"))
        wait.until(lambda driver: driver.find_element(By.ID, "attached").text == "audio: tone.wav")
        browser.find_element(By.ID, "question").send_keys("What sound is this?")
        browser.find_element(By.ID, "send").click()
        error = wait.until(lambda driver: next(iter(driver.find_elements(By.CSS_SELECTOR, ".turn.error")), None))
        assert "unsupported message part 'audio': this model takes text and images" in error.text
        assert "[audio: tone.wav]" in browser.find_element(By.CSS_SELECTOR, ".turn.user").text
        # A video likewise, as a video_url part.
        from test_video import write_video

        browser.find_element(By.ID, "reset").click()
        browser.find_element(By.ID, "file").send_keys(write_video(tmp_path / "clip.mkv", frames=20))
        wait.until(lambda driver: driver.find_element(By.ID, "attached").text == "video: clip.mkv")
        browser.find_element(By.ID, "question").send_keys("What happens?")
        browser.find_element(By.ID, "send").click()
        error = wait.until(lambda driver: next(iter(driver.find_elements(By.CSS_SELECTOR, ".turn.error")), None))
        assert "unsupported message part 'video': this model takes text and images" in error.text
    finally:
        server.shutdown()
        server.server_close()
