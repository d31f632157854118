// Pictures of attributions: the overlay shows the input untouched where the
// attribution is small and the attribution's colour where it is large.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mipin/report/images.h"

namespace mipin {
namespace {

TEST(Images, OverlayLeavesTheInputVisibleWhereAttributionIsSmall) {
  torch::manual_seed(1);
  for (int64_t channels : {1, 3}) {
    const at::Tensor x = torch::rand({channels, 8, 8});
    // A small background everywhere (1% and 4% of the peak), one strong
    // positive and one strong negative pixel, one in between.
    // (All in the first channel: the pictures sum over channels.)
    at::Tensor a = torch::zeros({channels, 8, 8});
    a[0].fill_(0.01);
    a[0][0].fill_(-0.04);
    a[0][4][4] = 1.0;
    a[0][5][5] = -1.0;
    a[0][6][6] = 0.3;
    const at::Tensor input = input_picture(x, 1).to(at::kInt);
    const at::Tensor overlay = overlay_picture(x, a, 1).to(at::kInt);
    ASSERT_EQ(overlay.sizes(), input.sizes());
    // The background: the input itself, in its own colours.
    at::Tensor background = torch::ones({8, 8}, torch::kBool);
    for (int64_t k : {4, 5, 6}) background[k][k] = false;
    EXPECT_TRUE(overlay.index({torch::indexing::Slice(), background})
                    .equal(input.index({torch::indexing::Slice(), background})))
        << channels << " channel(s)";
    // The peaks: red and blue, far from the input.
    const at::Tensor red = overlay.select(2, 4).select(1, 4), blue = overlay.select(2, 5).select(1, 5);
    EXPECT_GT(red[0].item<int>(), red[1].item<int>() + 80) << red;
    EXPECT_GT(red[0].item<int>(), red[2].item<int>() + 80) << red;
    EXPECT_GT(blue[2].item<int>(), blue[0].item<int>() + 60) << blue;
    // In between (0.3 of the peak): the input and red blended with the
    // documented smooth opacity.
    const double t = (0.3 - kOverlayThreshold) / (kOverlayFull - kOverlayThreshold);
    const double alpha = kOverlayOpacity * t * t * (3 - 2 * t);
    const at::Tensor want = input.select(2, 6).select(1, 6).to(at::kDouble) * (1 - alpha) +
                            torch::tensor({0.70, 0.09, 0.17}, torch::kDouble) * 255 * alpha;
    EXPECT_LE((overlay.select(2, 6).select(1, 6) - want).abs().max().item<double>(), 1.0) << want;
  }
}

}  // namespace
}  // namespace mipin
