/* RRIEF annotation page: keyboard shortcuts, evidence marking and the active-time count.
   The page works without this script; it only adds speed. No network requests. */
(function () {
  "use strict";
  var form = document.getElementById("label-form");
  if (!form) { return; }
  var controls = Array.prototype.slice.call(form.querySelectorAll(".ctl"));
  var marks = Array.prototype.slice.call(document.querySelectorAll(".report mark"));
  var segments = Array.prototype.slice.call(document.querySelectorAll(".report [data-o]"));
  var evidenceInput = form.elements.namedItem("evidence");
  var evidence = {};
  try { evidence = JSON.parse(evidenceInput.value || "{}") || {}; } catch (err) { evidence = {}; }
  var active = -1;

  // Active seconds: counted while the page is visible and focused.
  var seconds = 0;
  window.setInterval(function () {
    if (document.visibilityState === "visible" && document.hasFocus()) { seconds += 1; }
  }, 1000);
  form.addEventListener("submit", function () {
    form.elements.namedItem("seconds").value = String(seconds);
    evidenceInput.value = JSON.stringify(evidence);
  });

  function paths(el, attr) { return (el.getAttribute(attr) || "").split("|").filter(Boolean); }

  function setActive(i, focus) {
    if (!controls.length) { return; }
    i = Math.max(0, Math.min(controls.length - 1, i));
    if (active >= 0 && controls[active]) { controls[active].classList.remove("active"); }
    active = i;
    var c = controls[i];
    c.classList.add("active");
    var path = c.getAttribute("data-path");
    marks.forEach(function (m) {
      var hot = paths(m, "data-pf").indexOf(path) >= 0 || paths(m, "data-mine").indexOf(path) >= 0;
      m.classList.toggle("hot", hot);
    });
    if (focus) {
      var target = c.querySelector("input:checked") || c.querySelector("input") || c;
      target.focus();
      c.scrollIntoView({ block: "nearest" });
    }
  }

  function refreshChanged(c) {
    var inputs = c.querySelectorAll("input");
    var value;
    if (inputs.length && inputs[0].type === "checkbox") {
      value = Array.prototype.filter.call(inputs, function (x) { return x.checked; })
        .map(function (x) { return x.value; }).join("|");
    } else if (inputs.length && inputs[0].type === "radio") {
      var on = c.querySelector("input:checked");
      value = on ? on.value : null;
    } else {
      value = inputs.length ? inputs[0].value : "";
    }
    c.classList.toggle("changed", value !== c.getAttribute("data-prefill"));
  }

  function choose(n) {
    if (active < 0) { setActive(0, false); }
    var c = controls[active];
    var options = c.querySelectorAll("input[type=radio], input[type=checkbox]");
    var input = options[n];
    if (!input) { return; }
    input.checked = input.type === "checkbox" ? !input.checked : true;
    input.focus();
    refreshChanged(c);
  }

  function clearValue() {
    if (active < 0) { return; }
    var none = controls[active].querySelector("input[type=radio][value='']");
    if (none) { none.checked = true; none.focus(); refreshChanged(controls[active]); }
  }

  function textAt(start, end) {
    var out = "";
    segments.forEach(function (seg) {
      var o = Number(seg.getAttribute("data-o"));
      var t = seg.textContent;
      var a = Math.max(start, o);
      var b = Math.min(end, o + t.length);
      if (b > a) { out += t.slice(a - o, b - o); }
    });
    return out;
  }

  function offsetOf(node, offset) {
    var el = node.nodeType === 3 ? node.parentElement : node;
    var seg = el && el.closest ? el.closest("[data-o]") : null;
    if (!seg) { return null; }
    var base = Number(seg.getAttribute("data-o"));
    if (node.nodeType === 3) { return base + offset; }
    return base + (offset > 0 ? seg.textContent.length : 0);
  }

  function renderEvidence() {
    form.querySelectorAll("ul.ev").forEach(function (ul) {
      var path = ul.getAttribute("data-for");
      ul.textContent = "";
      (evidence[path] || []).forEach(function (span, k) {
        var li = document.createElement("li");
        li.textContent = "\u201c" + textAt(span[0], span[1]) + "\u201d ";
        var drop = document.createElement("button");
        drop.type = "button";
        drop.textContent = "remove";
        drop.setAttribute("aria-label", "remove this evidence of " + path);
        drop.addEventListener("click", function () {
          evidence[path].splice(k, 1);
          if (!evidence[path].length) { delete evidence[path]; }
          evidenceInput.value = JSON.stringify(evidence);
          renderEvidence();
        });
        li.appendChild(drop);
        ul.appendChild(li);
      });
    });
  }

  function markEvidence() {
    var sel = window.getSelection();
    if (!sel || sel.isCollapsed || active < 0) { return; }
    var range = sel.getRangeAt(0);
    var start = offsetOf(range.startContainer, range.startOffset);
    var end = offsetOf(range.endContainer, range.endOffset);
    if (start === null || end === null || end <= start) { return; }
    var path = controls[active].getAttribute("data-path");
    (evidence[path] = evidence[path] || []).push([start, end]);
    evidenceInput.value = JSON.stringify(evidence);
    sel.removeAllRanges();
    renderEvidence();
  }

  function toggleHelp() {
    var help = document.getElementById("keys");
    if (help) { help.open = !help.open; }
  }

  function press(action) {
    var button = form.querySelector("button[name=action][value=" + action + "]:not(.implicit)");
    if (button) { form.requestSubmit(button); }
  }

  form.addEventListener("focusin", function (e) {
    var c = e.target.closest(".ctl");
    if (c) { setActive(controls.indexOf(c), false); }
  });
  form.addEventListener("change", function (e) {
    var c = e.target.closest(".ctl");
    if (c) { refreshChanged(c); }
  });
  var skip = document.getElementById("skip_reason");
  if (skip) {
    skip.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.ctrlKey) { e.preventDefault(); press("skip"); }
    });
  }

  document.addEventListener("keydown", function (e) {
    var t = e.target;
    var typing = t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" &&
      ["radio", "checkbox", "submit", "button"].indexOf(t.type) < 0));
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
      e.preventDefault();
      press(form.querySelector("button[value=adjudicate]") ? "adjudicate" : "submit");
      return;
    }
    if ((e.ctrlKey || e.metaKey) && (e.key === "s" || e.key === "S")) {
      e.preventDefault();
      press("draft");
      return;
    }
    if (typing) {
      if (e.key === "Escape") {
        t.blur();
        if (active >= 0) { controls[active].focus(); }
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var digit = "1234567890".indexOf(e.key);
    if (digit >= 0 && e.key.length === 1) { e.preventDefault(); choose(digit); return; }
    switch (e.key) {
      case "j": e.preventDefault(); setActive(active + 1, true); break;
      case "k": e.preventDefault(); setActive(active - 1, true); break;
      case "-": e.preventDefault(); clearValue(); break;
      case "e": e.preventDefault(); markEvidence(); break;
      case "f": e.preventDefault(); form.elements.namedItem("flagged").click(); break;
      case "x": if (skip) { e.preventDefault(); skip.focus(); } break;
      case "g": e.preventDefault(); window.open("/guidelines", "_blank", "noopener"); break;
      case "?": e.preventDefault(); toggleHelp(); break;
      default: break;
    }
  });

  renderEvidence();
  if (controls.length) { setActive(0, !document.querySelector(".message.error")); }
}());
