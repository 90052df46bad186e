// @resonatehq/sdk 0.11 declares Node >= 22 and calls Promise.withResolvers (Node 22); Debian's
// Node here is 20. This is the standard ten-line polyfill, installed only when it is missing;
// imported before the SDK so that it is in place when the SDK runs.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
