// Deep Learning by Experiment: figures on every screen, and names for what only shows an icon.
(function () {
  "use strict";
  var SHRUNK = 0.9;  // a figure shown below 90% of its drawn width offers its full size

  // A figure of a code cell's output becomes a link to its full-size image, with a cue that
  // shows while it is shown smaller than drawn (phones, and wide multi-panel figures).
  function enlargeable(img) {
    var link = img.closest("a.course-figure-link");
    if (!link) {
      link = document.createElement("a");
      link.className = "course-figure-link";
      link.href = img.currentSrc || img.src;
      link.setAttribute("aria-label", "Open the figure at full size: " + (img.alt || "figure"));
      img.parentNode.insertBefore(link, img);
      link.appendChild(img);
      var cue = document.createElement("span");
      cue.className = "course-figure-cue";
      cue.textContent = "Tap or click the figure to open it at full size.";
      link.appendChild(cue);
    }
    var shown = img.getBoundingClientRect().width;
    link.classList.toggle("course-shrunk", img.naturalWidth > 0 && shown < SHRUNK * img.naturalWidth);
  }

  function figures() {
    document.querySelectorAll("div.cell_output img").forEach(function (img) {
      if (img.complete) {
        enlargeable(img);
      } else {
        img.addEventListener("load", function () { enlargeable(img); }, { once: true });
      }
    });
  }

  // The theme's table-of-contents toggles are <summary> elements holding only an icon: give each
  // the name of the section it opens, for screen readers (axe-core: summary-name).
  function nameToggles() {
    document.querySelectorAll("summary").forEach(function (summary) {
      if (summary.textContent.trim() || summary.getAttribute("aria-label")) {
        return;
      }
      var item = summary.closest("li");
      var link = item && item.querySelector(":scope > a");
      var name = link ? link.textContent.trim() : "this section";
      summary.setAttribute("aria-label", "Show or hide the pages under " + name);
    });
  }

  // The bibliography is a list whose entries carry a deprecated role: make them list items
  // (axe-core: aria-required-children, aria-deprecated-role).
  function bibliography() {
    document.querySelectorAll('[role="list"].citation-list > .citation').forEach(function (entry) {
      entry.setAttribute("role", "listitem");
    });
  }

  function setup() {
    nameToggles();
    bibliography();
    figures();
    window.addEventListener("resize", figures);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
