// The HTML report: its building blocks, and the whole report rendered by a
// real browser (Debian's chromium, headless).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "mipin/data/image_folder.h"
#include "mipin/eval/suite.h"
#include "mipin/inverse/inverse.h"
#include "mipin/report/html_report.h"
#include "mipin/report/images.h"
#include "mipin/util/base64.h"
#include "support/test_support.h"
#include "support/trained_models.h"

namespace mipin {
namespace {
namespace fs = std::filesystem;

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

TEST(Base64, MatchesTheTestVectorsOfRfc4648) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  // Bytes above 127 are unsigned, not sign-extended.
  EXPECT_EQ(base64_encode(std::string("\xff\xfe\x00", 3)), "//4A");
}

TEST(HtmlReport, EscapesText) {
  EXPECT_EQ(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
}

// A method that took the gradient's rule at some node says where, by name.
TEST(HtmlReport, NamesTheNodesWhereAMethodTookTheGradientsRule) {
  nlohmann::json metrics = {{"methods",
                             {{"lrp-epsilon",
                               {{"fallback_nodes", {{{"node", 3}, {"layer", "aten::lstm(<x>)"}}}}}},
                              {"gradient", {{"fallback_nodes", nlohmann::json::array()}}}}}};
  ReportGallery gallery;
  gallery.rows = {{"lrp-epsilon", {}}, {"gradient", {}}};
  const std::string html = html_report(metrics, gallery);
  EXPECT_NE(html.find("id=\"fallback\""), std::string::npos);
  EXPECT_NE(html.find("3 aten::lstm(&lt;x&gt;)"), std::string::npos) << html.substr(html.find("fallback"));
  metrics["methods"]["lrp-epsilon"]["fallback_nodes"] = nlohmann::json::array();
  EXPECT_EQ(html_report(metrics, gallery).find("id=\"fallback\""), std::string::npos);
}

// Browser, screenshot and the page's own image check, for one HTML file.
struct Rendering {
  int images = -1;
  int broken_images = -1;
  std::vector<std::string> console;  // every console message and uncaught error
  at::Tensor screenshot;
};

std::string chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    const auto r = test::run_command(std::string("command -v ") + name);
    if (r.exit_code == 0 && !r.out.empty()) return r.out.substr(0, r.out.find('\n'));
  }
  return "";
}

Rendering render(const std::string& html_path, const test::TempDir& dir) {
  const std::string browser = chromium();
  EXPECT_FALSE(browser.empty()) << "no chromium found: install it with scripts/install-deps.sh "
                                   "(apt-get install chromium)";
  Rendering r;
  if (browser.empty()) return r;
  // No network, a throwaway profile, software rendering; root needs --no-sandbox.
  const std::string flags = " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run"
                            " --disable-background-networking --disable-extensions --hide-scrollbars"
                            " --user-data-dir=" + dir.file("profile") +
                            " --virtual-time-budget=5000 --enable-logging=stderr --v=0";
  const std::string url = "file://" + fs::absolute(html_path).string();
  const auto dom = test::run_command(browser + flags + " --dump-dom " + url);
  EXPECT_EQ(dom.exit_code, 0) << dom.err;
  std::smatch m;
  if (std::regex_search(dom.out, m, std::regex("data-images=\"(\\d+)\""))) r.images = std::stoi(m[1]);
  if (std::regex_search(dom.out, m, std::regex("data-broken-images=\"(\\d+)\""))) r.broken_images = std::stoi(m[1]);
  std::istringstream err(dom.err);
  for (std::string line; std::getline(err, line);) {
    if (line.find(":CONSOLE") != std::string::npos) r.console.push_back(line);
  }
  const std::string shot = dir.file("screenshot.png");
  const auto s = test::run_command(browser + flags + " --window-size=1360,2400 --screenshot=" + shot + " " + url);
  EXPECT_EQ(s.exit_code, 0) << s.err;
  if (fs::exists(shot)) r.screenshot = read_image(shot);
  return r;
}

// The report of a real suite run: MIP-IN and baselines on the trained CNN.
class ReportInBrowser : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const test::TrainedModel& m = test::trained_model("cnn");
    const auto data = open_dataset("fashion-mnist", Split::Test);
    inverse_ = new Inverse(fit_inverse(m.network, *m.train_data,
                                       InverseOptions{}.with_examples(500)));
    SuiteOptions o;
    o.methods = {"mipin", "gradient", "guided-backprop", "lrp-epsilon", "random"};
    o.metrics = all_suite_metrics();
    o.examples = 40;
    o.randomization_examples = 8;
    o.refit_examples = 300;
    o.fit_data = m.train_data.get();
    o.settings.inverse = inverse_;
    o.boxes = torch::tensor({4, 4, 24, 24}, torch::kLong).repeat({40, 1});
    metrics_ = new nlohmann::json(run_suite(m.network, *data, o));
    (*metrics_)["model"] = "cnn <trained in the test>";
    (*metrics_)["split"] = "test";
    gallery_ = new ReportGallery();
    const Batch b = data->get(0, 5);
    const at::Tensor predicted = m.network.forward(b.inputs).argmax(1);
    for (int64_t i = 0; i < 5; ++i) {
      gallery_->examples.push_back({"example " + std::to_string(i), encode_png(input_picture(b.inputs[i], 4))});
    }
    for (const auto& name : o.methods) {
      const at::Tensor maps = make_method(name, o.settings)->attribute(m.network, b.inputs, predicted);
      ReportGallery::Row row{name, {}};
      for (int64_t i = 0; i < 5; ++i) row.heatmap_pngs.push_back(encode_png(heatmap_picture(maps[i], 4)));
      gallery_->rows.push_back(row);
    }
    html_ = new std::string(html_report(*metrics_, *gallery_));
  }
  static void TearDownTestSuite() {
    delete html_;
    delete gallery_;
    delete metrics_;
    delete inverse_;
  }
  static Inverse* inverse_;
  static nlohmann::json* metrics_;
  static ReportGallery* gallery_;
  static std::string* html_;
};
Inverse* ReportInBrowser::inverse_ = nullptr;
nlohmann::json* ReportInBrowser::metrics_ = nullptr;
ReportGallery* ReportInBrowser::gallery_ = nullptr;
std::string* ReportInBrowser::html_ = nullptr;

TEST_F(ReportInBrowser, IsSelfContainedAndHasEverySection) {
  const std::string& html = *html_;
  EXPECT_EQ(count_of(html, "http://"), 0u);
  EXPECT_EQ(count_of(html, "https://"), 0u);
  EXPECT_EQ(count_of(html, "<link"), 0u);
  // Inputs plus one heatmap per method and example, all inline.
  EXPECT_EQ(count_of(html, "<img "), 5u + 5u * 5u);
  EXPECT_EQ(count_of(html, "src=\"data:image/png;base64,"), 5u + 5u * 5u);
  // Three randomization charts, deletion and insertion, ROAD's two orders.
  EXPECT_EQ(count_of(html, "<svg "), 7u);
  for (const char* section : {"id=\"heatmaps\"", "id=\"metrics\"", "id=\"readings\"", "id=\"randomization\"",
                              "id=\"deletion\"", "id=\"road\"", "id=\"localization\"", "id=\"reconstruction\""}) {
    EXPECT_NE(html.find(section), std::string::npos) << section;
  }
  for (const auto& row : gallery_->rows) EXPECT_NE(html.find(">" + row.method + "<"), std::string::npos);
  // The model name is escaped, not markup.
  EXPECT_NE(html.find("cnn &lt;trained in the test&gt;"), std::string::npos);
  // Every plotted value is a number a browser can place.
  for (size_t at = html.find("<svg "); at != std::string::npos; at = html.find("<svg ", at + 1)) {
    const std::string svg = html.substr(at, html.find("</svg>", at) - at);
    EXPECT_EQ(svg.find("nan"), std::string::npos);
    EXPECT_EQ(svg.find("inf"), std::string::npos);
  }
}

TEST_F(ReportInBrowser, RendersInChromiumWithEveryImageAndNoConsoleMessage) {
  test::TempDir dir;
  test::write_text(dir.file("report.html"), *html_);
  const Rendering r = render(dir.file("report.html"), dir);
  EXPECT_EQ(r.images, 30);
  EXPECT_EQ(r.broken_images, 0);
  EXPECT_TRUE(r.console.empty()) << r.console.front();
  ASSERT_TRUE(r.screenshot.defined());
  EXPECT_EQ(r.screenshot.size(2), 1360);
  // Something was drawn: not a blank page.
  EXPECT_GT(r.screenshot.std().item<double>(), 10.0);

  // The check can fail: a corrupt image and a script error are both seen.
  std::string broken = *html_;
  const size_t data = broken.find("base64,") + 7;
  broken.replace(data, 40, std::string(40, 'A'));
  broken.replace(broken.find("</body>"), 7, "<script>not_defined_anywhere();</script></body>");
  test::write_text(dir.file("broken.html"), broken);
  const Rendering b = render(dir.file("broken.html"), dir);
  EXPECT_EQ(b.broken_images, 1);
  ASSERT_EQ(b.console.size(), 1u);
  EXPECT_NE(b.console[0].find("not_defined_anywhere"), std::string::npos) << b.console[0];
}

}  // namespace
}  // namespace mipin
