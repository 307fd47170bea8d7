#!/usr/bin/env python3
"""The sandbox tour in a real headless Chromium, by clicking: the owner connects two channels with the chat
picker and sets two tiers; a subscriber opens the offer post's button, pays in full on the checkout page, gets
the invite and joins (the join request is approved); time moves past the end of the subscription and the
subscriber is removed and offered a renewal; the operator panel shows the ledger balanced and the owner paid
from the hot wallet on the local chain.

Usage: sandbox_tour.py URL ARTIFACTS_DIR. Saves a screenshot per step in ARTIFACTS_DIR and fails on any
JavaScript console error. Uses Debian's chromium and chromedriver (apt) with Selenium (PyPI)."""
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

URL, ARTIFACTS = sys.argv[1], sys.argv[2]
os.makedirs(ARTIFACTS, exist_ok=True)
WAIT = 45
console_errors = []
step_number = 0


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("TELEPAY_CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900", "--disable-gpu"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(os.environ.get("TELEPAY_CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)


driver = browser()


def collect_console():
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            console_errors.append(entry.get("message", ""))


def shot(name):
    global step_number
    step_number += 1
    collect_console()
    path = os.path.join(ARTIFACTS, "%02d-%s.png" % (step_number, name))
    driver.save_screenshot(path)
    print("screenshot", path, flush=True)


def until(what, condition, timeout=WAIT):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda _: condition())
    except TimeoutException:
        shot("timeout")
        raise SystemExit("timed out after %ss waiting for %s" % (timeout, what))


def xpath_literal(text):
    if "'" not in text:
        return "'%s'" % text
    return "concat('%s')" % "', \"'\", '".join(text.split("'"))


def button(label, within="//body"):
    path = "%s//button[normalize-space(.)=%s]" % (within, xpath_literal(label))
    def find():
        found = [b for b in driver.find_elements(By.XPATH, path) if b.is_displayed() and b.is_enabled()]
        return found[-1] if found else None
    return until("a button '%s'" % label, find)


def click_found(what, find):
    """Clicks what `find` returns, finding it again when the page re-rendered it in between (live updates
    rebuild the chat)."""
    last = None
    for _ in range(10):
        try:
            find().click()
            return
        except (StaleElementReferenceException, WebDriverException) as error:
            last = error
            time.sleep(0.3)
    raise SystemExit("could not click %s: %s" % (what, getattr(last, "msg", last)))


def click(label, within="//body"):
    click_found("'%s'" % label, lambda: button(label, within))


def click_css(selector):
    click_found(selector, lambda: until(selector, lambda: next(
        (e for e in driver.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()), None)))


def see(text):
    until("the text '%s'" % text, lambda: text in driver.find_element(By.ID, "messages").text)


def say(text):
    field = driver.find_element(By.ID, "text")
    field.clear()
    field.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, "#composer button").click()


def open_chat(chat):
    click_css("[data-chat='%s']" % chat)


def pick_chat(title):
    click_css("#reply-keyboard button.request-chat")
    until("the chat picker", lambda: driver.find_element(By.ID, "picker").is_displayed())
    shot("chat-picker")
    click(title, "//dialog[@id='picker']")


def persona(user_id):
    Select(driver.find_element(By.ID, "persona")).select_by_value(str(user_id))


PRIVATE, PUBLIC = "-1001000000102", "-1001000000101"
try:
    driver.get(URL)
    until("the persona switcher", lambda: len(Select(driver.find_element(By.ID, "persona")).options) >= 5)
    shot("start")

    # The owner connects the private and the public channel and sets two tiers.
    say("/channels")
    click("➕ Add channel")
    see("Step 1 of 2")
    pick_chat("Olga's Kitchen: Members (private)")
    see("Step 2 of 2")
    pick_chat("Olga's Kitchen (public)")
    see("Channel settings")
    click("💰 Tiers")
    click("Tier 1: ❌")
    see("Tier 1: send the price")
    say("5")
    see("Tier 1: for how many days")
    say("7")
    see("$5.00 · 7 days")
    click("Tier 2: ❌")
    see("Tier 2: send the price")
    say("12")
    see("Tier 2: for how many days")
    say("30")
    see("$12.00 · 30 days")
    shot("owner-tiers")
    click("⬅️ Back")
    click("💳 Payout")
    click("🌐 Network")
    click("Ethereum (ETH)")
    click("ETH")
    see("wallet address")
    say("0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359")
    see("0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")
    click("⬅️ Back")
    click("✅ Save all changes")
    see("All changes saved")
    shot("owner-saved")

    # A subscriber opens the offer post's first tier, pays in full on the checkout page and joins.
    persona(1001)
    open_chat(PUBLIC)
    until("the offer post's tier button", lambda: driver.find_elements(By.CSS_SELECTOR, "#messages button.url[title*='start=t1']"))
    shot("offer-post")
    click_css("#messages button.url[title*='start=t1']")
    click("💰 Pay")
    until("the checkout page", lambda: driver.find_element(By.ID, "checkout").is_displayed())
    until("the invoice", lambda: "5 USD" in driver.find_element(By.ID, "checkout-price").text)
    shot("checkout")
    click("Pay in full", "//dialog[@id='checkout']")
    until("the callbacks", lambda: "finished → HTTP 200" in driver.find_element(By.ID, "checkout-result").text)
    shot("paid")
    click("Back to Telegram")
    click("🔗 Join the channel")
    open_chat(PRIVATE)
    until("Sam's membership", lambda: "Your status: member" in driver.find_element(By.ID, "messages").text)
    shot("joined")

    # Time moves past the end of the 7-day tier: the scheduler runs the missed expiry sweep at once, which removes
    # Sam and offers a renewal.
    amount = driver.find_element(By.ID, "clock-amount")
    amount.clear()
    amount.send_keys("8")
    Select(driver.find_element(By.ID, "clock-unit")).select_by_value("24")
    click_css("#advance")
    open_chat("bot")
    until("the renewal offer", lambda: driver.find_elements(By.XPATH, "//div[@id='messages']//button[contains(., 'Renew')]"))
    shot("expired-renew")
    until("Sam out of the private channel", lambda: not any(
        "member" in item.text for item in driver.find_elements(By.CSS_SELECTOR, "[data-chat='%s']" % PRIVATE)))

    # The operator panel: the ledger balances.
    persona(2001)
    click_css("#operator-toggle")
    until("the ledger", lambda: "balanced" in driver.find_element(By.ID, "balanced").text)
    if "NOT" in driver.find_element(By.ID, "balanced").text:
        raise SystemExit("the operator panel says the ledger is not balanced")
    # With the local chain (its packages are installed with the test's), the hot wallet pays Olga's share.
    until("the owner's payout", lambda: "Recently paid (1)" in driver.find_element(By.ID, "payouts").text, timeout=90)
    shot("operator")

    # The page speaks Russian too: its words come from TelePay's String Catalog.
    Select(driver.find_element(By.ID, "page-language")).select_by_value("ru")
    until("the page in Russian", lambda: driver.find_element(By.CSS_SELECTOR, ".brand").text == "Песочница TelePay")
    until("the composer in Russian", lambda: driver.find_element(By.CSS_SELECTOR, "#composer button").text == "Отправить")
    until("the operator panel in Russian", lambda: driver.find_element(By.ID, "operator-toggle").text == "Панель оператора")
    until("the ledger line in Russian", lambda: "Бухгалтерия сходится" in driver.find_element(By.ID, "balanced").text)
    shot("russian")
    collect_console()
finally:
    try:
        collect_console()
    finally:
        driver.quit()

if console_errors:
    print("JavaScript console errors:", *console_errors, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print("sandbox tour passed: %d screenshots in %s" % (step_number, ARTIFACTS))
