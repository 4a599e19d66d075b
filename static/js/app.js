// Keyboard: "/" focuses the search box (unless already typing somewhere).
document.addEventListener("keydown", (event) => {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
  if (event.key === "/" && !typing) {
    const box = document.getElementById("q");
    if (box) { event.preventDefault(); box.focus(); box.select(); }
  }
});

// Ticking a result for "more like these" must not re-run the search: the search form listens
// for "change" (filters), so the pick boxes' change events stop here, before they reach it.
// (A trigger filter in hx-trigger would do the same, but needs eval, which the CSP forbids.)
document.addEventListener("change", (event) => {
  if (event.target.classList?.contains("pick")) event.stopPropagation();
}, true);
