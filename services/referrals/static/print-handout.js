// Progressive enhancement: the print was recorded by the form's POST; this only opens the
// browser's print dialog. Without it, the page prints the same with the browser's own command.
(function () {
  if (document.body.getAttribute("data-print") === "now") window.print();
})();
