"""The cohort chart in a real browser: its x-axis is the day slider's range, from a copied URL
and as the slider moves (re-ranged in the browser, no server request), under a one-sentence
caption."""
from selenium.webdriver.common.keys import Keys

from cxrviz import ids
from tests.browser_helpers import (browser_errors, callback_requests, open_tab, start,
                                   wait_until)

RANGE = (f"const g = document.querySelector('#{ids.COHORT_GRAPH} .js-plotly-plot');"
         "return g && g._fullLayout && g._fullLayout.xaxis2 && g._fullData.length > 3 ? "
         "[g._fullLayout.xaxis.range, g._fullLayout.xaxis2.range] : null;")


def test_the_cohort_chart_spans_the_day_slider(dash_duo, covid_artifact):
    duo = start(dash_duo, covid_artifact.out, "/?day_from=0&day_to=14")
    open_tab(duo, "Cohort over time")
    assert wait_until(lambda: duo.driver.execute_script(RANGE), what="cohort chart") == \
        [[0, 14], [0, 14]]
    caption = duo.find_element(f"#{ids.COHORT} p").text
    assert caption.endswith(".") and caption.count(". ") == 0 and "patient" in caption
    before = callback_requests(duo)
    upper = duo.driver.find_elements("css selector", f"#{ids.DAY_RANGE} [role=slider]")[1]
    duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", upper)
    upper.click()
    for _ in range(4):  # day 14 -> 10
        upper.send_keys(Keys.ARROW_LEFT)
    wait_until(lambda: duo.driver.execute_script(RANGE) == [[0, 10], [0, 10]],
               what=f"range 0 to 10, saw {duo.driver.execute_script(RANGE)}")
    assert callback_requests(duo) == before  # re-ranged in the browser
    assert browser_errors(duo) == []
