document.querySelectorAll("button[data-for]").forEach(function (b) {
  b.hidden = false;
  b.onclick = function () {
    var i = document.getElementById(b.getAttribute("data-for")), show = i.type === "password";
    i.type = show ? "text" : "password";
    b.textContent = show ? "Hide" : "Show";
  };
});
