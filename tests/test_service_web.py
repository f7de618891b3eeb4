"""The web page at ``/`` in headless Chromium: list collections with a key, run a query, see the
same ids as the API returns."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
webdriver = pytest.importorskip("selenium.webdriver")

from hashlearn.service.process import ServerProcess  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
KEY = "web-read-key-0123"
WKEY = "web-write-key-0123"


@pytest.fixture(scope="module")
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian packages chromium, chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_browse_and_query(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    keys = tmp_path / "keys.txt"
    keys.write_text(f"{KEY} read\n{WKEY} write\n")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    with ServerProcess(tmp_path / "data", keys) as srv:
        W = {"Authorization": f"Bearer {WKEY}"}
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            c.put("/collections/docs", json={"dim": 4, "n_bits": 16}, headers=W).raise_for_status()
            c.post("/collections/docs/train", json={"vectors": X.tolist()}, headers=W).raise_for_status()
            c.post("/collections/docs/points", json={"ids": list(range(100, 140)), "vectors": X.tolist(),
                                                     "payloads": [{"title": f"doc {i}"} for i in range(40)]},
                   headers=W).raise_for_status()
            expected = c.post("/collections/docs/search", json={"vectors": X[3:4].tolist(), "k": 5, "rerank": True},
                              headers={"Authorization": f"Bearer {KEY}"}).json()
        wait = WebDriverWait(browser, 30)
        browser.get(srv.url + "/")
        # without a key the page shows the 401 answer
        browser.find_element(By.ID, "refresh").click()
        wait.until(lambda d: "401" in d.find_element(By.ID, "error").text)
        browser.find_element(By.ID, "apikey").send_keys(KEY)
        browser.find_element(By.ID, "refresh").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.coll"))
        row = browser.find_element(By.CSS_SELECTOR, "tr.coll")
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        assert cells[:3] == ["docs", "40", "4"] and cells[-1] == "true"
        browser.find_element(By.ID, "query").send_keys(json.dumps(X[3].tolist()))
        k = browser.find_element(By.ID, "k")
        k.clear()
        k.send_keys("5")
        browser.find_element(By.ID, "rerank").click()
        browser.find_element(By.ID, "search").click()
        wait.until(lambda d: d.find_element(By.ID, "results").get_attribute("data-done") == "1")
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.result")
        ids = [int(r.find_elements(By.TAG_NAME, "td")[1].text) for r in rows]
        assert ids == expected["ids"][0] and ids[0] == 103
        assert rows[0].find_elements(By.TAG_NAME, "td")[3].text == '{"title":"doc 3"}'
        # a malformed query is reported, not sent
        q = browser.find_element(By.ID, "query")
        q.clear()
        q.send_keys("[1, 2")
        browser.find_element(By.ID, "search").click()
        wait.until(lambda d: "JSON list" in d.find_element(By.ID, "error").text)
