/* Chart tooltips: pygal writes each point's text into <desc class="value"> / <desc class="label">;
   show it beside the pointer. Replaces pygal's CDN script, which these pages never load. */
(function () {
  var tip = document.getElementById("chart-tooltip");
  if (!tip) { return; }
  function textOf(trigger, cls) {
    var node = trigger.parentNode.querySelector("desc." + cls);
    return node ? node.textContent : "";
  }
  document.querySelectorAll(".chart .tooltip-trigger").forEach(function (trigger) {
    trigger.addEventListener("mouseenter", function () {
      var label = textOf(trigger, "label");
      var value = textOf(trigger, "value");
      tip.textContent = label && value.indexOf(label) === -1 ? label + ": " + value : (label || value);
      tip.hidden = !tip.textContent;
    });
    trigger.addEventListener("mousemove", function (event) {
      tip.style.left = (event.clientX + 14) + "px";
      tip.style.top = (event.clientY + 12) + "px";
    });
    trigger.addEventListener("mouseleave", function () { tip.hidden = true; });
  });
})();
