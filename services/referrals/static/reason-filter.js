// Progressive enhancement: the list works without it; this only hides reasons that do not match.
(function () {
  var input = document.getElementById("reason-filter");
  if (!input) return;
  input.addEventListener("input", function () {
    var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    document.querySelectorAll(".reason-group").forEach(function (group) {
      var shown = 0;
      group.querySelectorAll(".reason").forEach(function (label) {
        var text = label.getAttribute("data-search");
        var match = words.every(function (w) { return text.indexOf(w) !== -1; });
        var checked = label.querySelector("input").checked;
        label.hidden = !(match || checked);
        if (!label.hidden) shown += 1;
      });
      group.hidden = shown === 0;
    });
  });
})();
