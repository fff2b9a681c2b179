"""The example payloads of ../shared/reference/binance-usdm-futures.md, verbatim."""

from __future__ import annotations

AGG_TRADE = b'{"e":"aggTrade","E":1791382992488,"a":3477868433,"s":"BTCUSDT","p":"83091.70","q":"0.022","nq":"0.022","f":8153634393,"l":8153634394,"T":1791382992338,"m":false,"st":1}'  # noqa: E501
TRADE = b'{"e":"trade","E":1596034530241,"T":1596034530235,"s":"ETHUSDT","t":73701056,"p":"2366.55","q":"0.070","X":"INSURANCE_FUND","m":true}'  # noqa: E501
BOOK_TICKER = b'{"e":"bookTicker","u":11757092630476,"s":"BTCUSDT","ps":"BTCUSDT","b":"83091.60","B":"4.215","a":"83091.70","A":"3.763","T":1791382994657,"E":1791382994658,"st":1}'  # noqa: E501
DEPTH = b'{"e":"depthUpdate","E":1785048482829,"T":1785048482718,"s":"BTCUSDT","ps":"BTCUSDT","U":359220619477,"u":359220619477,"pu":359220613550,"b":[],"a":[["64346.70","589.8041"]],"st":1}'  # noqa: E501
KLINE = b'{"e":"kline","E":1626992760203,"s":"SUSHIUSDT","k":{"t":1626992700000,"T":1626992759999,"s":"SUSHIUSDT","i":"1m","f":126902874,"L":126902986,"o":"7.6080","c":"7.6170","h":"7.6180","l":"7.6070","v":"3005","n":113,"x":true,"q":"22875.8590","V":"1900","Q":"14464.6960","B":"0"}}'  # noqa: E501
MARK_PRICE = b'{"e":"markPriceUpdate","E":1791382993000,"s":"BTCUSDT","p":"83084.30000000","ap":"83084.30000000","P":"83195.15881449","i":"83123.65891304","r":"0.00000078","T":1791388800000,"st":1}'  # noqa: E501
FORCE_ORDER = b'{"e":"forceOrder","E":1584059031426,"o":{"s":"BTCUSDT","S":"BUY","o":"LIMIT","f":"IOC","q":"0.014","p":"4793.91","ap":"4706.04","X":"FILLED","l":"0.015","z":"0.014","T":1584059031421}}'  # noqa: E501
DEPTH_SNAPSHOT = b'{"lastUpdateId":11757092217378,"E":1791382991286,"T":1791382991283,"bids":[["83084.30","2.986"]],"asks":[["83084.40","4.632"]]}'  # noqa: E501
KLINE_ROW = [
    1626992700000,
    "7.6080",
    "7.6180",
    "7.6070",
    "7.6170",
    "3005",
    1626992759999,
    "22875.8590",
    113,
    "1900",
    "14464.6960",
    "0",
]
PREMIUM_INDEX_KEYS = [
    "symbol",
    "markPrice",
    "indexPrice",
    "estimatedSettlePrice",
    "lastFundingRate",
    "interestRate",
    "nextFundingTime",
    "time",
]
FUNDING_RATE_KEYS = ["symbol", "fundingTime", "fundingRate", "markPrice", "rateType"]
