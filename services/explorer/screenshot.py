"""`python -m services.explorer.screenshot --user 196 --out docs/explorer.png`: a PNG of the running
explorer page (Debian's headless chromium through /usr/bin/chromedriver, driven by Selenium; the
driver path is explicit, so Selenium Manager downloads nothing). Needs the dev extra (selenium)."""

from __future__ import annotations

import argparse
from pathlib import Path

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"


def shoot(url: str, out: Path, width: int = 1400, height: int = 1250, wait_css: str = "#arm-control") -> Path:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(url)
        WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.CSS_SELECTOR, wait_css)))
        out.parent.mkdir(parents=True, exist_ok=True)
        if not driver.save_screenshot(str(out)):
            raise RuntimeError(f"chromium could not write {out}")
    finally:
        driver.quit()
    return out


def main(argv: list[str] | None = None) -> int:
    from minirec.settings import get_settings

    p = argparse.ArgumentParser(prog="python -m services.explorer.screenshot", description=__doc__)
    p.add_argument("--user", default="196", help="user id (or `random`) to show (default %(default)s)")
    p.add_argument("--url", default=get_settings().explorer_url, help="explorer base URL (default %(default)s)")
    p.add_argument("--out", type=Path, default=get_settings().artifacts_path / "explorer" / "explorer.png")
    a = p.parse_args(argv)
    print(f"wrote {shoot(f'{a.url}/?user={a.user}', a.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
